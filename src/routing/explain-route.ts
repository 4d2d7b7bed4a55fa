import { servicePortFor } from '../config/snapshot.js';
import { mergeTrafficPolicy } from '../config/compile/traffic-policy.js';
import type { ResourceRef } from '../config/issue.js';
import type { Snapshot, TrafficPolicySpec } from '../config/snapshot.js';
import type { Endpoint } from '../discovery/endpoint.js';
import { labelsMatch } from '../discovery/endpoint.js';
import { resolveServiceHost } from './resolve-host.js';
import type { RouteRequest } from './route-request.js';
import { matchRoute } from './route-table.js';

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

export interface RouteExplanation {
  readonly request: { readonly method: string; readonly url: string; readonly host: string; readonly port: number };
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
  readonly mirrors: unknown;
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
    header: (name) => (name === 'host' || name === ':authority' ? headers.get('host') ?? url.host : headers.get(name)),
  };
}

/** What the mesh would do with one request: route, destinations, policy, endpoints. */
export function explainRoute(snapshot: Snapshot, method: string, url: URL, headers: ReadonlyMap<string, string>): RouteExplanation {
  const request = routeRequestFor(method, url, headers);
  const host = resolveServiceHost(url.hostname, snapshot);
  const notes: string[] = [];
  const table = snapshot.routeTable(host);
  const hit = table ? matchRoute(table, request) : undefined;
  if (table && !hit) notes.push(`VirtualService ${table.resource.namespace}/${table.resource.name} has no route matching this request: Istio answers 404 (NR)`);
  if (!table) notes.push(`no VirtualService for ${host}: default route to the service`);

  const destinations = hit
    ? hit.route.destinations.map((d) => ({ host: d.host, subset: d.subset, port: d.port ?? request.port, percent: d.share * 100 }))
    : table ? [] : [{ host, subset: undefined, port: request.port, percent: 100 }];

  const spec = hit?.route.spec;
  return {
    request: { method: request.method, url: url.href, host, port: request.port },
    virtualService: table?.resource,
    route: hit ? { index: hit.route.index, name: hit.route.name, path: hit.route.path, resource: hit.route.resource } : undefined,
    matchedConditions: hit && hit.matchIndex >= 0 ? hit.route.matches[hit.matchIndex]!.conditions : [],
    destinations: destinations.map((d) => explainDestination(snapshot, d.host, d.subset, d.port, d.percent)),
    timeout: spec?.timeout ?? 'none (Istio default: no route timeout)',
    retries: spec?.retries ?? { ...DEFAULT_RETRIES, note: 'Istio default' },
    fault: spec?.fault,
    redirect: spec?.redirect,
    directResponse: spec?.directResponse,
    rewrite: spec?.rewrite,
    headers: spec?.headers,
    mirrors: spec?.mirrors ?? (spec?.mirror ? [{ destination: spec.mirror }] : undefined),
    notes,
  };
}

function explainDestination(snapshot: Snapshot, host: string, subset: string | undefined, port: number, percent: number): ExplainedDestination {
  const rule = snapshot.destinationRule(host);
  const subsetDef = subset ? rule?.subsets.get(subset) : undefined;
  const service = snapshot.service(host);
  const servicePort = servicePortFor(service, port);
  let endpoints: readonly Endpoint[] = servicePort?.endpoints ?? [];
  let endpointsNote: string | undefined;
  if (subset && !subsetDef) endpointsNote = `subset "${subset}" is not defined: Istio answers 503 (NC)`;
  else if (subsetDef) endpoints = endpoints.filter((e) => labelsMatch(subsetDef.labels, e.labels));
  if (!service) endpointsNote ??= 'not in the configuration: found at run time (Kubernetes DNS or API)';
  else if (!servicePort) endpointsNote ??= `service ${host} has no port ${port}`;
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
  };
}
