import type { Host } from '../balancer/index.js';
import type { ClusterResilience } from '../cluster/cluster.js';
import type { ActiveCluster, ClusterManager } from '../cluster/cluster-manager.js';
import type { CompiledLoadBalancing, HashOn } from '../config/compile/load-balancing.js';
import { dnsPlanEndpoints, kubernetesPlanEndpoints, planEndpoints } from '../cluster/endpoint-plan.js';
import type { EndpointPlan } from '../cluster/endpoint-plan.js';
import { mergeTrafficPolicy } from '../config/compile/traffic-policy.js';
import type { Snapshot } from '../config/snapshot.js';
import type { DnsEndpointSource } from '../discovery/dns/index.js';
import type { KubernetesEndpointSource } from '../kubernetes/discovery/index.js';
import type { Endpoint, Locality } from '../discovery/endpoint.js';
import type { BreakerState } from '../resilience/events.js';
import type { EndpointHealth, InspectedCluster, InspectedClusterPolicy, InspectedEndpoint } from './inspection.js';
import { inspectedResource } from './route-view.js';

/** What cluster inspection reads; all owned by the mesh. */
export interface ClusterViewInputs {
  readonly snapshot: Snapshot;
  readonly clusters: ClusterManager;
  readonly dns: DnsEndpointSource | undefined;
  readonly kube: KubernetesEndpointSource | undefined;
  readonly breakerState: (host: string) => BreakerState | undefined;
  /** Clock ms to a wall-clock ISO string. */
  readonly wallTime: (clockMs: number) => string;
}

interface Destination {
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number;
}

/** Host, then port, then subset (none first). */
function byDestination(a: Destination, b: Destination): number {
  if (a.host !== b.host) return a.host < b.host ? -1 : 1;
  if (a.port !== b.port) return a.port - b.port;
  if (a.subset === b.subset) return 0;
  if (a.subset === undefined) return -1;
  if (b.subset === undefined) return 1;
  return a.subset < b.subset ? -1 : 1;
}

function envoyName(d: Destination): string {
  return `outbound|${d.port}|${d.subset ?? ''}|${d.host}`;
}

function localityText(l: Locality): string {
  return l.region || l.zone || l.subZone ? `${l.region}/${l.zone}/${l.subZone}` : '';
}

function hashText(h: HashOn | undefined): string | undefined {
  if (!h) return undefined;
  return h.kind === 'source-ip' ? 'source-ip' : `${h.kind}:${h.name}`;
}

function summarisePolicy(
  lb: CompiledLoadBalancing,
  r: ClusterResilience,
  trafficPolicy: Readonly<Record<string, unknown>> | undefined,
): InspectedClusterPolicy {
  const tls = trafficPolicy?.tls as { mode?: unknown } | undefined;
  const c = r.connections;
  const o = r.outlier;
  const l = r.limits;
  const hashOn = hashText(lb.hashOn);
  return {
    loadBalancer: lb.passthrough ? 'PASSTHROUGH' : lb.spec.policy,
    ...(hashOn !== undefined ? { hashOn } : {}),
    http2: lb.http2,
    tlsMode: typeof tls?.mode === 'string' ? tls.mode : 'DISABLE',
    connectTimeoutMs: c.connectTimeoutMs,
    ...(c.maxConnections !== undefined ? { maxConnections: c.maxConnections } : {}),
    ...(c.idleTimeoutMs !== undefined ? { idleTimeoutMs: c.idleTimeoutMs } : {}),
    ...(l
      ? {
          limits: {
            maxPendingRequests: l.maxPending,
            maxRequests: l.maxRequests,
            maxRetries: l.maxRetries,
            ...(l.budget ? { retryBudget: { percent: l.budget.percent, minRetryConcurrency: l.budget.minConcurrency } } : {}),
          },
        }
      : {}),
    ...(o
      ? {
          outlierDetection: {
            consecutive5xxErrors: o.consecutive5xx,
            consecutiveGatewayErrors: o.consecutiveGateway,
            consecutiveLocalOriginFailures: o.consecutiveLocalOrigin,
            splitExternalLocalOriginErrors: o.splitLocalOrigin,
            intervalMs: o.intervalMs,
            baseEjectionTimeMs: o.baseEjectionMs,
            maxEjectionTimeMs: o.maxEjectionMs,
            maxEjectionPercent: o.maxEjectionPercent,
            ...(o.errorCodes ? { httpErrorCodes: [...o.errorCodes].sort((a, b) => a - b) } : {}),
          },
        }
      : {}),
    ...(lb.hedgeAfterMs > 0 ? { hedgeAfterMs: lb.hedgeAfterMs } : {}),
    ...(trafficPolicy ? { trafficPolicy } : {}),
  };
}

function endpointView(endpoint: Endpoint, health: EndpointHealth, inFlight: number): InspectedEndpoint {
  const a = endpoint.address;
  return {
    address: `${a.includes(':') ? `[${a}]` : a}:${endpoint.port}`,
    health,
    weight: endpoint.weight,
    locality: localityText(endpoint.locality),
    labels: endpoint.labels,
    inFlight,
  };
}

function liveEndpoint(active: ActiveCluster, host: Host, wallTime: (ms: number) => string): InspectedEndpoint {
  const ejection = active.cluster.ejection(host);
  if (ejection) {
    return { ...endpointView(host.endpoint, 'ejected', host.active), ejectedUntil: wallTime(ejection.returnsAt), ejections: ejection.ejections };
  }
  return endpointView(host.endpoint, host.endpoint.ready ? 'healthy' : 'not-ready', host.active);
}

/** Endpoints of a cluster no request has made yet: what its plan gives now. */
function plannedEndpoints(
  plan: EndpointPlan | undefined,
  dns: DnsEndpointSource | undefined,
  kube: KubernetesEndpointSource | undefined,
): { endpoints: readonly Endpoint[]; reason: string | undefined } {
  if (!plan) return { endpoints: [], reason: undefined };
  if (plan.kind === 'static') return { endpoints: plan.endpoints, reason: plan.emptyReason };
  if (plan.kind === 'kubernetes') {
    return kube ? kubernetesPlanEndpoints(plan, kube.endpoints(plan.service, plan.host, plan.port)) : { endpoints: [], reason: undefined };
  }
  if (!dns) return { endpoints: [], reason: undefined };
  // Names no cluster watches yet have no status: the cluster resolves them on first use.
  if (plan.bindings.every((b) => dns.status(b.key) === undefined)) return { endpoints: [], reason: 'resolved by DNS on first use' };
  return dnsPlanEndpoints(plan, (key) => dns.status(key));
}

/** The destinations the configuration declares: every visible service port, with and without each subset. */
function declaredDestinations(snapshot: Snapshot): Destination[] {
  const list: Destination[] = [];
  for (const service of snapshot.services()) {
    if (service.host.includes('*')) continue;
    const subsets = [...(snapshot.destinationRule(service.host)?.subsets.keys() ?? [])];
    for (const port of service.ports) {
      list.push({ host: service.host, subset: undefined, port: port.number });
      for (const subset of subsets) list.push({ host: service.host, subset, port: port.number });
    }
  }
  return list;
}

/**
 * Every cluster: those the configuration declares and those requests made (Kubernetes names
 * found by DNS), with live endpoint state for the ones in use.
 */
export function inspectClusters(inputs: ClusterViewInputs): InspectedCluster[] {
  const { snapshot, clusters, dns, kube } = inputs;
  const byName = new Map<string, { d: Destination; active: ActiveCluster | undefined }>();
  for (const d of declaredDestinations(snapshot)) byName.set(envoyName(d), { d, active: undefined });
  for (const active of clusters.active()) byName.set(envoyName(active), { d: active, active });
  const result: InspectedCluster[] = [];
  for (const [name, { d, active }] of [...byName].sort(([, a], [, b]) => byDestination(a.d, b.d))) {
    const rule = snapshot.destinationRule(d.host);
    const subsetDef = d.subset !== undefined ? rule?.subsets.get(d.subset) : undefined;
    const trafficPolicy = mergeTrafficPolicy(rule?.trafficPolicy, subsetDef?.trafficPolicy, d.port);
    const compiled = active ? active.cluster.policy : safePolicy(clusters, d);
    const plan = planEndpoints(snapshot, d.host, d.subset, d.port, dns, kube);
    let endpoints: InspectedEndpoint[];
    let reason: string | undefined;
    if (active) {
      endpoints = [
        ...active.cluster.hostList.map((h) => liveEndpoint(active, h, inputs.wallTime)),
        ...active.cluster.terminatingEndpoints.map((e) => endpointView(e, 'terminating', 0)),
      ];
      reason = active.cluster.unavailableReason;
    } else {
      const planned = plannedEndpoints(plan, dns, kube);
      endpoints = planned.endpoints.map((e) => endpointView(e, e.ready ? 'healthy' : 'not-ready', 0));
      reason = planned.reason;
    }
    const service = snapshot.service(d.host);
    const breaker = inputs.breakerState(d.host);
    const mesh = active ? active.cluster.meshTls : clusters.meshTlsFor(d.host, d.subset, d.port);
    const mtls = mesh && { mode: mesh.auto ? ('auto' as const) : ('ISTIO_MUTUAL' as const), sni: mesh.sni, expectedIdentities: mesh.subjectAltNames };
    result.push({
      name,
      host: d.host,
      ...(d.subset !== undefined ? { subset: d.subset } : {}),
      port: d.port,
      active: active !== undefined,
      discovery: plan === undefined ? 'none' : plan.kind,
      ...(service ? { serviceEntry: inspectedResource(service.source) } : {}),
      destinationRules: (rule?.sources ?? []).map(inspectedResource),
      policy: compiled
        ? { ...summarisePolicy(compiled.loadBalancing, compiled.resilience, trafficPolicy), ...(mtls ? { mtls } : {}) }
        : { loadBalancer: 'invalid', http2: false, tlsMode: 'DISABLE', connectTimeoutMs: 0 },
      endpoints,
      ...(endpoints.length === 0 && reason !== undefined ? { unavailableReason: reason } : {}),
      inFlight: endpoints.reduce((n, e) => n + e.inFlight, 0),
      ...(breaker !== undefined ? { breaker } : {}),
    });
  }
  return result;
}

function safePolicy(clusters: ClusterManager, d: Destination): ReturnType<ClusterManager['policyFor']> {
  try {
    return clusters.policyFor(d.host, d.subset, d.port);
  } catch {
    // A balancer option the data path would refuse on first use; the route's 503 says why.
    return undefined;
  }
}
