import { servicePortFor } from '../config/snapshot.js';
import { mergeTrafficPolicy } from '../config/compile/traffic-policy.js';
import type { ResourceRef } from '../issue.js';
import type { Snapshot, TrafficPolicySpec } from '../config/snapshot.js';
import type { Endpoint } from '../discovery/endpoint.js';
import { labelsMatch } from '../discovery/endpoint.js';
import { resolveServiceHost } from '../routing/resolve-host.js';
import type { RouteRequest } from '../match/route-request.js';
import { matchRoute } from '../routing/route-table.js';
import type { TlsPortRoutes } from '../routing/tls-route.js';
import { connectionOf, selectTlsMatch } from '../routing/tls-route.js';

/** Istio's retry policy when a route sets none (mesh default). */
export const DEFAULT_RETRIES = Object.freeze({
  attempts: 2,
  retryOn: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
});

export interface ExplainedDestination {
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number | undefined;
  /** Share of traffic in percent. */
  readonly percent: number;
  /** DestinationRules merged for this host, in precedence order. */
  readonly destinationRules: readonly ResourceRef[];
  /** top level < subset < port level, as Istio merges it. */
  readonly trafficPolicy: TrafficPolicySpec | undefined;
  readonly service: ResourceRef | undefined;
  readonly endpoints: readonly Endpoint[];
  /** Why no endpoints are listed, when none are. */
  readonly endpointsNote: string | undefined;
}

/** How the call leaves the process, as the applicable Sidecar and its outbound traffic policy decide. */
export interface ExplainedEgress {
  /** The Sidecar resource that applies to the caller (none: every host is visible, ALLOW_ANY). */
  readonly sidecar: ResourceRef | undefined;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /**
   * `registry`: a VirtualService or ServiceEntry the caller sees covers the host; `discovered`: a
   * Kubernetes service, its endpoints found at run time; `passthrough`: unknown, sent to the host
   * as named (ALLOW_ANY); `refused`: unknown, refused (REGISTRY_ONLY).
   */
  readonly decision: 'registry' | 'discovered' | 'passthrough' | 'refused';
  readonly note: string;
}

/** A copy of the request sent to a mirror (fire and forget). */
export interface ExplainedMirror {
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number | undefined;
  /** Share of requests copied, in percent. */
  readonly percent: number;
  /** Why no copy is sent, when none is. */
  readonly note: string | undefined;
}

export interface RouteExplanation {
  readonly request: { readonly method: string; readonly url: string; readonly host: string; readonly port: number };
  readonly egress: ExplainedEgress;
  /** What the caller gets that the rest of the explanation only implies (refusal, 404, 503s), first. */
  readonly outcome: readonly string[];
  readonly virtualService: ResourceRef | undefined;
  readonly route: { readonly index: number; readonly name: string | undefined; readonly path: string; readonly resource: ResourceRef } | undefined;
  readonly matchedConditions: readonly string[];
  readonly destinations: readonly ExplainedDestination[];
  readonly timeout: string;
  readonly retries: unknown;
  readonly fault: unknown;
  readonly redirect: unknown;
  readonly directResponse: unknown;
  readonly rewrite: unknown;
  readonly headers: unknown;
  readonly mirrors: readonly ExplainedMirror[];
  readonly notes: readonly string[];
}

/** Builds the RouteRequest for a URL and header list (used by explain, tests and the CLI). */
export function routeRequestFor(method: string, url: URL, headers: ReadonlyMap<string, string>): RouteRequest {
  const scheme = url.protocol.replace(/:$/, '');
  const port = url.port ? Number(url.port) : scheme === 'https' ? 443 : 80;
  return {
    method: method.toUpperCase(),
    scheme,
    authority: headers.get('host') ?? url.host,
    port,
    path: url.pathname,
    query: url.search.replace(/^\?/, ''),
    header: (name) => (name === 'host' || name === ':authority' ? (headers.get('host') ?? url.host) : headers.get(name)),
  };
}

/** What the mesh would do with one request: route, destinations, policy, endpoints. */
export function explainRoute(snapshot: Snapshot, method: string, url: URL, headers: ReadonlyMap<string, string>): RouteExplanation {
  const request = routeRequestFor(method, url, headers);
  const host = resolveServiceHost(url.hostname, snapshot);
  const notes: string[] = [];
  const outcome: string[] = [];
  const portRoute = snapshot.routeFor(host, request.port);
  if (portRoute.kind === 'tls') return explainTlsPort(snapshot, request, url, host, portRoute);
  const table = portRoute.table;
  const egress = explainEgress(snapshot, host, table !== undefined);
  const hit = table ? matchRoute(table, request) : undefined;
  if (table && !hit) {
    notes.push(`${table.resource.kind} ${table.resource.namespace}/${table.resource.name} has no route matching this request: Istio answers 404 (NR)`);
    outcome.push(`404 "route not found": no route of the ${table.resource.kind} matches (NR)`);
  }
  if (!table && egress.decision !== 'refused') notes.push(`no VirtualService for ${host}: default route to the service`);
  if (egress.decision === 'refused') outcome.push(`refused before it leaves the process: ${egress.note}`);

  const destinations = hit
    ? hit.route.destinations.map((d) => ({ host: d.host, subset: d.subset, port: d.port ?? request.port, percent: d.share * 100 }))
    : table || egress.decision === 'refused'
      ? []
      : [{ host, subset: undefined, port: request.port, percent: 100 }];
  const explained = destinations.map((d) => explainDestination(snapshot, d.host, d.subset, d.port, d.percent, egress));

  const spec = hit?.route.spec;
  const direct = spec?.directResponse as { status?: number } | undefined;
  const redirect = spec?.redirect as { redirectCode?: number } | undefined;
  if (direct) outcome.push(`direct response ${direct.status ?? ''}, answered in process`);
  else if (redirect) outcome.push(`redirect ${redirect.redirectCode ?? 301}, answered in process`);
  else {
    for (const d of explained) {
      if (d.subset !== undefined && d.missingSubset) {
        outcome.push(`503 "no healthy upstream" for ${d.percent.toFixed(1)}% of requests: ${d.missingSubset}`);
      }
    }
  }
  return {
    request: { method: request.method, url: url.href, host, port: request.port },
    egress,
    outcome,
    virtualService: table?.resource,
    route: hit ? { index: hit.route.index, name: hit.route.name, path: hit.route.path, resource: hit.route.resource } : undefined,
    matchedConditions: hit && hit.matchIndex >= 0 ? hit.route.matches[hit.matchIndex]!.conditions : [],
    destinations: explained.map(({ missingSubset: _, ...d }) => d),
    timeout: spec?.timeout ?? 'none (Istio default: no route timeout)',
    retries: spec?.retries ?? { ...DEFAULT_RETRIES, note: 'Istio default' },
    fault: spec?.fault,
    redirect: spec?.redirect,
    directResponse: spec?.directResponse,
    rewrite: spec?.rewrite,
    headers: spec?.headers,
    mirrors: (hit?.route.mirrors ?? []).map((m) => ({
      host: m.host,
      subset: m.subset,
      port: m.port,
      percent: m.fraction * 100,
      note:
        m.subset !== undefined && !snapshot.destinationRule(m.host)?.subsets.has(m.subset) ? `subset "${m.subset}" is not defined: no copy is sent` : undefined,
    })),
    notes,
  };
}

/**
 * A call to a TLS or HTTPS port: routed by SNI with the `tls` routes (Envoy's tcp_proxy), so no
 * HTTP route, timeout, retry, fault or mirror applies; plaintext is refused.
 */
function explainTlsPort(snapshot: Snapshot, request: RouteRequest, url: URL, host: string, routes: TlsPortRoutes): RouteExplanation {
  const egress = explainEgress(snapshot, host, true);
  const port = request.port;
  const notes = [
    `port ${port} of ${host} is ${routes.protocol === 'HTTPS' ? 'an' : 'a'} ${routes.protocol} port: routed by SNI with VirtualService tls routes; http routes, timeouts, retries, faults and mirrors do not apply (Envoy's tcp_proxy)`,
  ];
  const outcome: string[] = [];
  const { sni, addresses } = connectionOf(url.hostname, routes);
  const hit = request.scheme === 'https' && routes.resource ? selectTlsMatch(routes.routes, sni, addresses) : undefined;
  let destinations: { host: string; subset: string | undefined; port: number; percent: number }[] = [];
  if (request.scheme !== 'https') {
    outcome.push(
      `refused before it leaves the process: TlsPortPlaintextError (ERR_MESH_TLS_PORT_PLAINTEXT): ${routes.protocol === 'HTTPS' ? 'an' : 'a'} ${routes.protocol} port takes https:// URLs only`,
    );
  } else if (!routes.resource) {
    notes.push(`no tls route applies to this port${snapshot.routeTable(host) ? '' : ' (no VirtualService)'}: the connection goes to the service itself`);
    destinations = [{ host, subset: undefined, port, percent: 100 }];
  } else if (!hit) {
    const vs = `${routes.resource.kind} ${routes.resource.namespace}/${routes.resource.name}`;
    outcome.push(
      `refused before it leaves the process: NoTlsRouteError (ERR_MESH_NO_TLS_ROUTE): no tls route of ${vs} matches SNI ${sni === undefined ? '(none)' : `"${sni}"`}`,
    );
  } else {
    destinations = hit.route.destinations.map((d) => ({ host: d.host, subset: d.subset, port: d.port ?? port, percent: d.share * 100 }));
  }
  const explained = destinations.map((d) => explainDestination(snapshot, d.host, d.subset, d.port, d.percent, egress));
  for (const d of explained) {
    if (d.subset !== undefined && d.missingSubset) outcome.push(`refused for ${d.percent.toFixed(1)}% of connections: ${d.missingSubset}`);
  }
  return {
    request: { method: request.method, url: url.href, host, port },
    egress,
    outcome,
    virtualService: routes.resource,
    route: hit ? { index: hit.route.index, name: undefined, path: hit.route.path, resource: hit.route.resource } : undefined,
    matchedConditions: hit ? [hit.match.conditions] : [],
    destinations: explained.map(({ missingSubset: _, ...d }) => d),
    timeout: 'none (a TLS port: no HTTP route timeout)',
    retries: { attempts: 0, note: "none: a TLS port is not retried (Envoy's tcp_proxy)" },
    fault: undefined,
    redirect: undefined,
    directResponse: undefined,
    rewrite: undefined,
    headers: undefined,
    mirrors: [],
    notes,
  };
}

/** `name.ns.svc.<clusterDomain>` (or a name under it): a Kubernetes service the mesh discovers itself. */
function isKubernetesService(host: string, clusterDomain: string): boolean {
  const suffix = `.svc.${clusterDomain}`;
  return host.endsWith(suffix) && host.slice(0, -suffix.length).includes('.');
}

/** As the dispatcher decides: the registry first, then Kubernetes services, then the outbound traffic policy. */
function explainEgress(snapshot: Snapshot, host: string, routed: boolean): ExplainedEgress {
  const sidecar = snapshot.sidecar;
  const mode = snapshot.outboundTrafficPolicy ?? 'ALLOW_ANY';
  const by = sidecar ? ` (Sidecar ${sidecar.namespace}/${sidecar.name})` : ' (no Sidecar applies)';
  const base = { sidecar, outboundTrafficPolicy: mode };
  const service = snapshot.service(host);
  if (routed || service) {
    const what = service ? `ServiceEntry ${service.source.namespace}/${service.source.name}` : 'a VirtualService';
    return { ...base, decision: 'registry', note: `in the registry: ${what}` };
  }
  const k8s = isKubernetesService(host, snapshot.clusterDomain);
  const suffix = `.svc.${snapshot.clusterDomain}`;
  const namespace = k8s ? host.slice(0, -suffix.length).split('.').at(-1)! : '';
  if (k8s && snapshot.isEgressAllowed(host, namespace)) {
    return { ...base, decision: 'discovered', note: 'a Kubernetes service: its endpoints are found at run time (Kubernetes API or DNS)' };
  }
  const hidden = hiddenBySidecar(snapshot, host, k8s);
  if (mode === 'REGISTRY_ONLY') {
    return {
      ...base,
      decision: 'refused',
      note: `"${host}" is not in the service registry${hidden} and outboundTrafficPolicy is REGISTRY_ONLY${by}: the call rejects with UnknownHostError (ERR_MESH_UNKNOWN_HOST) where Envoy answers 502 from its BlackHoleCluster`,
    };
  }
  return { ...base, decision: 'passthrough', note: `not in the service registry${hidden}; ALLOW_ANY${by} passes the call through to "${host}" as named` };
}

/** `, hidden by ...` when a resource declares the host but the Sidecar's egress hosts do not import it. */
function hiddenBySidecar(snapshot: Snapshot, host: string, k8s: boolean): string {
  const sidecar = snapshot.sidecar;
  if (!sidecar) return '';
  if (k8s) return ` (the egress hosts of Sidecar ${sidecar.namespace}/${sidecar.name} do not import it)`;
  const entry = snapshot.resources.find(
    (r) =>
      r.kind === 'ServiceEntry' &&
      ((r.spec as { hosts?: readonly string[] }).hosts ?? []).some((h) => {
        const name = h.toLowerCase();
        return name === host || (name.startsWith('*') && host.endsWith(name.slice(1)));
      }),
  );
  return entry
    ? ` (ServiceEntry ${entry.metadata.namespace}/${entry.metadata.name} declares it, but the egress hosts of Sidecar ${sidecar.namespace}/${sidecar.name} do not import it)`
    : '';
}

function explainDestination(
  snapshot: Snapshot,
  host: string,
  subset: string | undefined,
  port: number,
  percent: number,
  egress: ExplainedEgress,
): ExplainedDestination & { readonly missingSubset: string | undefined } {
  const rule = snapshot.destinationRule(host);
  const subsetDef = subset ? rule?.subsets.get(subset) : undefined;
  const service = snapshot.service(host);
  const servicePort = servicePortFor(service, port);
  let endpoints: readonly Endpoint[] = servicePort?.endpoints ?? [];
  let endpointsNote: string | undefined;
  let missingSubset: string | undefined;
  if (subset && !subsetDef) {
    missingSubset = rule
      ? `subset "${subset}" of ${host} is not defined by DestinationRule ${rule.sources.map((r) => `${r.namespace}/${r.name}`).join(', ')} (defined: ${[...rule.subsets.keys()].join(', ') || 'none'})`
      : `subset "${subset}" of ${host} is not defined: no DestinationRule for this host applies`;
    endpoints = [];
    endpointsNote = `subset "${subset}" is not defined: Istio answers 503 (NC)`;
  } else if (subsetDef) endpoints = endpoints.filter((e) => labelsMatch(subsetDef.labels, e.labels));
  if (!service) {
    endpointsNote ??=
      egress.decision === 'passthrough'
        ? 'passed through: the connection goes to the host the caller named'
        : 'not in the configuration: found at run time (Kubernetes DNS or API)';
  } else if (!servicePort) endpointsNote ??= `service ${host} has no port ${port}`;
  else if (service.resolution === 'NONE') endpointsNote ??= 'resolution NONE: the connection goes to the address the caller asked for';
  return {
    host,
    subset,
    port,
    percent,
    destinationRules: rule?.sources ?? [],
    trafficPolicy: mergeTrafficPolicy(rule?.trafficPolicy, subsetDef?.trafficPolicy, port),
    service: service?.source,
    endpoints,
    endpointsNote,
    missingSubset,
  };
}
