import { servicePortFor } from '../config/snapshot.js';
import type { Snapshot } from '../config/snapshot.js';
import type { DnsWatchSpec, DnsWatchStatus, EndpointTemplate } from '../discovery/dns/index.js';
import { dnsWatchKey } from '../discovery/dns/index.js';
import { serviceEntryDnsWatches } from './service-entry-dns.js';
import type { Endpoint } from '../discovery/endpoint.js';
import { labelsMatch } from '../discovery/endpoint.js';
import type { KubeServiceRef, ServiceEndpoints } from '../kubernetes/discovery/index.js';

/** One DNS name behind a destination and what the endpoints of its answers inherit. */
export interface DnsBinding {
  /** The watch key in the DNS source. */
  readonly key: string;
  /**
   * The watch as given to the DNS source: name, port and mode only. Labels, weight and locality
   * are applied here instead ({@link shapeEndpoint}), so a ServiceEntry whose labels change keeps
   * its watch and its answer, and one name used by several destinations is looked up once.
   */
  readonly spec: DnsWatchSpec;
  /** Undefined for Kubernetes names: their endpoints carry no labels. */
  readonly template: EndpointTemplate | undefined;
}

/** What endpoint planning needs from DNS discovery (a `DnsEndpointSource` is one). */
export interface DnsPlanning {
  /** SRV port names of Kubernetes services no configuration declares, keyed `<fqdn>:<port>`. */
  readonly portNames: ReadonlyMap<string, string>;
}

/** Where a destination's endpoints come from, decided once per snapshot (never per request). */
export type EndpointPlan =
  | {
      readonly kind: 'static';
      /** Already filtered by the subset's labels. */
      readonly endpoints: readonly Endpoint[];
      /** Why `endpoints` is empty, when it is. */
      readonly emptyReason: string | undefined;
    }
  | {
      readonly kind: 'dns';
      readonly host: string;
      /** `service-entry`: a `resolution: DNS`/`DNS_ROUND_ROBIN` entry; `kubernetes`: a service no configuration knows. */
      readonly origin: 'service-entry' | 'kubernetes';
      readonly bindings: readonly DnsBinding[];
      readonly subset: string | undefined;
      /** The subset's labels; undefined without a subset. */
      readonly selector: Readonly<Record<string, string>> | undefined;
      /** False when a subset is asked for that no DestinationRule defines: nothing is selected. */
      readonly subsetDefined: boolean;
    }
  | {
      readonly kind: 'kubernetes';
      readonly host: string;
      readonly service: KubeServiceRef;
      readonly port: number;
      readonly subset: string | undefined;
      readonly selector: Readonly<Record<string, string>> | undefined;
      readonly subsetDefined: boolean;
    };

/** What endpoint planning needs from Kubernetes API discovery (a `KubernetesEndpointSource` is one). */
export interface KubernetesPlanning {
  parse(host: string): KubeServiceRef | undefined;
}

/** A plan whose endpoints come from the Kubernetes API. */
export type KubernetesEndpointPlan = Extract<EndpointPlan, { readonly kind: 'kubernetes' }>;

/** A plan whose endpoints come from DNS. */
export type DnsEndpointPlan = Extract<EndpointPlan, { readonly kind: 'dns' }>;

/**
 * Where the endpoints of (host, subset, port) come from, in this order:
 *
 * 1. a ServiceEntry (or the WorkloadEntries it selects) for the host: its endpoints as written for
 *    `STATIC`, its addresses (or the host itself) resolved by DNS for `DNS` and `DNS_ROUND_ROBIN`;
 *    `NONE` has none (the request goes to the host as named);
 * 2. a Kubernetes service name (`name.ns.svc.<clusterDomain>`) no ServiceEntry declares: with
 *    Kubernetes API discovery (`kube`), its EndpointSlices (one endpoint per ready pod); else the
 *    name's A/AAAA records (one address per pod for a headless service, the VIP for ClusterIP),
 *    or, when `dns.portNames` names the port, its SRV records (falling back to A/AAAA);
 * 3. otherwise none: undefined, and the dispatcher passes the request through as named.
 *
 * Without DNS discovery (`dns` undefined), a DNS ServiceEntry's endpoints keep their names as
 * addresses (the connection resolves them) and Kubernetes names pass through.
 */
export function planEndpoints(
  snapshot: Snapshot,
  host: string,
  subset: string | undefined,
  port: number,
  dns: DnsPlanning | undefined,
  kube?: KubernetesPlanning,
): EndpointPlan | undefined {
  const service = snapshot.service(host);
  const subsetDef = subset !== undefined ? snapshot.destinationRule(host)?.subsets.get(subset) : undefined;
  if (service) {
    if (service.resolution === 'NONE') return undefined;
    const servicePort = servicePortFor(service, port);
    if (!servicePort || servicePort.endpoints.length === 0) return undefined;
    if (dns !== undefined && (service.resolution === 'DNS' || service.resolution === 'DNS_ROUND_ROBIN')) {
      const bindings = serviceEntryDnsWatches(service, servicePort, snapshot.clusterDomain).map((spec) => binding(spec, spec.template));
      return dnsPlan(host, 'service-entry', bindings, subset, subsetDef?.labels, subset === undefined || subsetDef !== undefined);
    }
    if (subset === undefined) return { kind: 'static', endpoints: servicePort.endpoints, emptyReason: undefined };
    // A subset no rule defines has no endpoints: Istio answers 503 (no cluster).
    if (!subsetDef) return { kind: 'static', endpoints: [], emptyReason: undefinedSubset(host, subset) };
    const endpoints = servicePort.endpoints.filter((e) => labelsMatch(subsetDef.labels, e.labels));
    return { kind: 'static', endpoints, emptyReason: endpoints.length === 0 ? noLabelMatch(host, subset, subsetDef.labels) : undefined };
  }
  // A Sidecar's egress hosts scope Kubernetes services too: one outside them is not the mesh's (the
  // request passes through under ALLOW_ANY, as Istio's PassthroughCluster sends it).
  if (isKubernetesServiceHost(host, snapshot.clusterDomain) && !isImportedKubernetesService(snapshot, host)) return undefined;
  if (kube !== undefined) {
    const ref = kube.parse(host);
    if (ref !== undefined) {
      return {
        kind: 'kubernetes',
        host,
        service: ref,
        port,
        subset,
        selector: subsetDef?.labels,
        subsetDefined: subset === undefined || subsetDef !== undefined,
      };
    }
  }
  if (dns !== undefined && isKubernetesServiceHost(host, snapshot.clusterDomain)) {
    // The trailing dot makes the name absolute: it is already the FQDN, so no search domain is
    // tried (with a pod's ndots:5 a 4-dot name would first go through the whole search list).
    const portName = dns.portNames.get(`${host}:${port}`);
    const spec: DnsWatchSpec = { name: `${host}.`, port, ...(portName !== undefined ? { portName, protocol: 'tcp' } : {}), mode: 'strict' };
    return dnsPlan(host, 'kubernetes', [binding(spec, undefined)], subset, subsetDef?.labels, subset === undefined || subsetDef !== undefined);
  }
  return undefined;
}

function dnsPlan(
  host: string,
  origin: 'service-entry' | 'kubernetes',
  bindings: readonly DnsBinding[],
  subset: string | undefined,
  selector: Readonly<Record<string, string>> | undefined,
  subsetDefined: boolean,
): EndpointPlan {
  return { kind: 'dns', host, origin, bindings, subset, selector, subsetDefined };
}

function binding(spec: DnsWatchSpec, template: EndpointTemplate | undefined): DnsBinding {
  const bare: DnsWatchSpec = {
    name: spec.name,
    ...(spec.port !== undefined ? { port: spec.port } : {}),
    ...(spec.portName !== undefined ? { portName: spec.portName } : {}),
    ...(spec.protocol !== undefined ? { protocol: spec.protocol } : {}),
    ...(spec.mode !== undefined ? { mode: spec.mode } : {}),
  };
  return { key: dnsWatchKey(bare), spec: bare, template };
}

/**
 * True for `name.ns.svc.<clusterDomain>` (and longer names under it, such as a headless service's
 * pod names), without allocating: this runs for every request to a host no configuration knows.
 */
/**
 * Whether a Kubernetes service host (`isKubernetesServiceHost`) is in the caller's registry: the
 * applicable Sidecar's egress hosts import its namespace and name (no Sidecar imports all).
 */
export function isImportedKubernetesService(snapshot: Snapshot, host: string): boolean {
  return snapshot.isEgressAllowed(host, kubernetesNamespace(host, snapshot.clusterDomain));
}

/** The namespace of a Kubernetes service host (`name.ns.svc.<domain>`, or a pod's `pod.name.ns.svc.<domain>`). */
export function kubernetesNamespace(host: string, clusterDomain: string): string {
  const svc = host.length - clusterDomain.length - 5;
  return host.slice(host.lastIndexOf('.', svc - 1) + 1, svc);
}

export function isKubernetesServiceHost(host: string, clusterDomain: string): boolean {
  const end = host.length - clusterDomain.length;
  if (end < 8 || !host.endsWith(clusterDomain) || !host.startsWith('.svc.', end - 5)) return false;
  const dot = host.indexOf('.');
  // At least `name.ns` before `.svc.`: a dot that is neither first nor the one of `.svc.`.
  return dot > 0 && dot < end - 6;
}

/**
 * A DNS answer's endpoint with what the ServiceEntry endpoint it came from says about it. The
 * entry's weight goes to every address (as Envoy's STRICT_DNS does), times the relative SRV weight
 * the answer carries (1 for address answers).
 */
export function shapeEndpoint(endpoint: Endpoint, template: EndpointTemplate | undefined): Endpoint {
  if (!template) return endpoint;
  return {
    ...endpoint,
    weight: template.weight !== undefined && template.weight > 0 ? template.weight * endpoint.weight : endpoint.weight,
    labels: template.labels ?? endpoint.labels,
    locality: template.locality ?? endpoint.locality,
    ...(template.network !== undefined ? { network: template.network } : {}),
    ...(template.tlsMode !== undefined ? { tlsMode: template.tlsMode } : {}),
  };
}

export function undefinedSubset(host: string, subset: string): string {
  return `no healthy upstream: subset "${subset}" of ${host} is not defined by any DestinationRule that applies`;
}

export function noLabelMatch(host: string, subset: string, labels: Readonly<Record<string, string>>): string {
  const selector = Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  return `no healthy upstream: no endpoint of ${host} has the labels of subset "${subset}" (${selector})`;
}

/**
 * The endpoints of a DNS plan from its names' latest answers (`status` of each watch key), with
 * the entries' labels and weights applied and the subset selected, and why there are none.
 */
export function dnsPlanEndpoints(
  plan: DnsEndpointPlan,
  status: (key: string) => DnsWatchStatus | undefined,
): { readonly endpoints: readonly Endpoint[]; readonly reason: string | undefined } {
  const seen = new Set<string>();
  const endpoints: Endpoint[] = [];
  let found = 0;
  for (const b of plan.bindings) {
    for (const answered of status(b.key)?.endpoints ?? []) {
      found++;
      const endpoint = shapeEndpoint(answered, b.template);
      // Two names answering the same address: one host, the first one's labels.
      if (seen.has(endpoint.key) || !plan.subsetDefined || !labelsMatch(plan.selector, endpoint.labels)) continue;
      seen.add(endpoint.key);
      endpoints.push(endpoint);
    }
  }
  if (endpoints.length > 0) return { endpoints, reason: undefined };
  let reason: string;
  if (plan.subset !== undefined && !plan.subsetDefined) reason = undefinedSubset(plan.host, plan.subset);
  else if (found > 0 && plan.subset !== undefined) {
    reason = noLabelMatch(plan.host, plan.subset, plan.selector ?? {});
    if (plan.origin === 'kubernetes') {
      reason += `: its endpoints come from DNS, which carries no labels, so a subset with labels cannot select them (declare the service with a ServiceEntry whose endpoints have labels)`;
    }
  } else reason = dnsFailure(plan, status);
  return { endpoints, reason };
}

/** Why the names behind a DNS plan gave no endpoint: each failed lookup or empty answer. */
function dnsFailure(plan: DnsEndpointPlan, status: (key: string) => DnsWatchStatus | undefined): string {
  const parts: string[] = [];
  for (const b of plan.bindings) {
    const s = status(b.key);
    if (!s) continue;
    if (s.endpoints === undefined && s.lastError) parts.push(s.lastError.message);
    else if (s.endpoints !== undefined && s.endpoints.length === 0) parts.push(emptyAnswer(b.spec, s.name, s.fqdn));
  }
  return `no healthy upstream for ${plan.host}: ${parts.length > 0 ? [...new Set(parts)].join('; ') : 'no DNS answer yet'}`;
}

/** Why a name that DNS answered gave no endpoint. */
function emptyAnswer(spec: DnsWatchSpec, name: string, fqdn: string | undefined): string {
  if (spec.portName === undefined) return `DNS has no address records for ${name} (NXDOMAIN or NODATA)`;
  // The SRV name answered (fqdn is set to it) but none of its targets has an address.
  if (fqdn !== undefined) return `no target of the DNS SRV records of ${fqdn} has an address record`;
  return `DNS has no SRV records for _${spec.portName}._${spec.protocol ?? 'tcp'}.${name} and no address records for ${name} (NXDOMAIN or NODATA)`;
}

/** The endpoints of a Kubernetes plan from the source's current state, the subset selected. */
export function kubernetesPlanEndpoints(plan: KubernetesEndpointPlan, all: ServiceEndpoints): ServiceEndpoints {
  if (plan.subset !== undefined && !plan.subsetDefined) return { endpoints: [], reason: undefinedSubset(plan.host, plan.subset), terminating: [] };
  if (plan.selector === undefined) return all;
  const selector = plan.selector;
  const terminating = all.terminating.filter((e) => labelsMatch(selector, e.labels));
  if (all.endpoints.length === 0) return { ...all, terminating };
  const endpoints = all.endpoints.filter((e) => labelsMatch(selector, e.labels));
  return { endpoints, reason: endpoints.length === 0 ? noLabelMatch(plan.host, plan.subset ?? '', selector) : undefined, terminating };
}
