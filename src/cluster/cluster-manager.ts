import type { ClusterHealth } from '../telemetry/mesh-metrics.js';
import { servicePortFor } from '../config/snapshot.js';
import type { MeshClock, RandomSource } from '../clock.js';
import { mergeTrafficPolicy } from '../config/compile/traffic-policy.js';
import type { Snapshot } from '../config/snapshot.js';
import type { DnsEndpointChange, DnsEndpointSource } from '../discovery/dns/index.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { KubernetesEndpointSource } from '../kubernetes/discovery/index.js';
import type { PriorityBalancer } from '../balancer/index.js';
import { locate } from '../config/compile/context.js';
import type { ConfigIssue } from '../issue.js';
import { MeshConfigError } from '../config/errors.js';
import type { CallerIdentity, CompiledLoadBalancing } from '../config/compile/load-balancing.js';
import { compileLoadBalancing, LOAD_BALANCER_ANNOTATION } from '../config/compile/load-balancing.js';
import type { ClusterResilience } from './cluster.js';
import { Cluster } from './cluster.js';
import type { PoolFactory } from '../transport/pool-factory.js';
import { poolFactoryOn } from '../transport/pool-factory.js';
import type { EjectionEvent } from '../resilience/events.js';
import type { ServiceBreaker } from '../resilience/service-breaker.js';
import { compileResilience } from './resilience-spec.js';
import type { MeshTls } from '../security/mesh-tls.js';
import { resolveMeshTls, serviceIdentities } from '../security/mesh-tls.js';
import type { MtlsMode } from '../security/peer-authentication-policy.js';
import { namespaceMtlsMode } from '../config/compile/security/peer-authentication.js';
import { TrustDomains } from '../security/spiffe-id.js';
import type { ClientCredentials } from '../security/client-credentials.js';
import type { TlsIstioMutual, TlsOrigination, TlsUnavailable } from '../security/tls-settings.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';
import type { CertificateBundle } from '../security/certificate-bundle.js';
import type { ResolvedTls } from './cluster.js';
import type { EndpointPlan } from './endpoint-plan.js';
import {
  dnsPlanEndpoints,
  isImportedKubernetesService,
  isKubernetesServiceHost,
  kubernetesNamespace,
  kubernetesPlanEndpoints,
  planEndpoints,
} from './endpoint-plan.js';

const DEFAULT_TRUST_DOMAINS = new TrustDomains('cluster.local');

/** What mesh mTLS needs from the mesh's security. */
export interface ClusterSecurity {
  /** The workload's certificates; undefined when the mesh has none (auto mTLS is then off). */
  readonly certificates: WorkloadCertificates | undefined;
  readonly trustDomains: TrustDomains;
  /** Istio's `enableAutoMtls` (default true). */
  readonly autoMtls: boolean;
}

export interface ClusterManagerDeps {
  readonly clock: MeshClock;
  readonly random: RandomSource;
  readonly caller: CallerIdentity;
  readonly poolFactory?: PoolFactory;
  /**
   * DNS discovery (owned by the caller, who closes it after this manager): resolves
   * `resolution: DNS` ServiceEntries and Kubernetes service names no configuration knows.
   * Without it, such names are left to the connection (or passed through) as before.
   */
  readonly dns?: DnsEndpointSource;
  /**
   * Kubernetes API discovery (owned by the caller): endpoints of `name.ns.svc.<domain>` from
   * EndpointSlices, chosen before DNS. Its `change` events recompute only the clusters of the
   * Service concerned.
   */
  readonly kube?: KubernetesEndpointSource;
  /** Told of every outlier ejection and return, in any cluster. */
  readonly onEjection?: (event: EjectionEvent) => void;
  /** Mesh mTLS (ISTIO_MUTUAL, auto mTLS); without it both are off and ISTIO_MUTUAL fails closed. */
  readonly security?: ClusterSecurity;
  /**
   * DestinationRule client credentials kept current (`credentialName` Secrets, the files a `tls`
   * block names). Without it a `credentialName` fails closed and files are read once.
   */
  readonly credentials?: ClientCredentials;
}

/** A cluster the manager holds, as inspection sees it. */
export interface ActiveCluster {
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number;
  readonly cluster: Cluster;
  /** DNS watch keys behind its endpoints. */
  readonly dnsKeys: readonly string[];
}

interface Entry {
  readonly key: string;
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number;
  readonly cluster: Cluster;
  plan: EndpointPlan;
  /** The Kubernetes Service (`namespace/name`) whose changes this entry follows. */
  serviceKey: string | undefined;
  /** The protocol the Service gave the port when the balancing was last compiled. */
  kubeProtocol: string | undefined;
  /** DNS watch keys this entry holds a reference on. */
  watchKeys: readonly string[];
  /**
   * Set while the entry waits for the first answer of watches it just added. Meanwhile its
   * previous endpoints keep serving (Envoy's cluster warming); a new cluster has none, so its
   * first requests wait ({@link Cluster.warming}).
   */
  settling: Promise<void> | undefined;
  /** Whether endpoints were ever applied (the first set skips slow start, as at startup). */
  filled: boolean;
}

/** What a new snapshot changes in one cluster, built before it is applied. */
type Staged =
  | { readonly entry: Entry; readonly plan: undefined }
  | {
      readonly entry: Entry;
      readonly plan: EndpointPlan;
      readonly lb: CompiledLoadBalancing;
      readonly balancer: PriorityBalancer;
      readonly resilience: ClusterResilience;
      readonly tls: [ResolvedTls | undefined, MeshTls | undefined];
    };

/**
 * A balancer the candidate snapshot asks for could not be built (a policy the application
 * registered refused): the change is rejected, naming the DestinationRule and its field.
 */
function balancerFailure(snapshot: Snapshot, entry: Entry, error: unknown): MeshConfigError {
  const rule = snapshot.destinationRule(entry.host);
  const subset = entry.subset !== undefined ? rule?.subsets.get(entry.subset) : undefined;
  const byAnnotation = rule?.annotations[LOAD_BALANCER_ANNOTATION] !== undefined;
  const ref = byAnnotation || !subset?.trafficPolicy?.['loadBalancer'] ? rule?.sources[0] : subset.source;
  const resource = ref && snapshot.resources.find((r) => r.kind === ref.kind && r.metadata.namespace === ref.namespace && r.metadata.name === ref.name);
  let path: (string | number)[] = ['spec', 'trafficPolicy', 'loadBalancer'];
  if (byAnnotation) path = ['metadata', 'annotations', LOAD_BALANCER_ANNOTATION];
  else if (ref === subset?.source && resource) {
    const index = ((resource.spec as { subsets?: { name?: string }[] }).subsets ?? []).findIndex((s) => s.name === subset?.name);
    path = ['spec', 'subsets', index, 'trafficPolicy', 'loadBalancer'];
  }
  const destination = `${entry.host}${entry.subset !== undefined ? ` subset ${entry.subset}` : ''} port ${entry.port}`;
  const issue: ConfigIssue = {
    severity: 'error',
    code: 'build-failed',
    message: `the load balancer for ${destination} could not be built: ${error instanceof Error ? error.message : String(error)}`,
    ...(ref ? { resource: ref } : {}),
    path: path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join(''),
    ...(resource ? { location: locate(resource, path) } : {}),
  };
  return new MeshConfigError([issue], 'configuration change rejected');
}

/**
 * Clusters are made on first use of a (host, subset, port) and kept in step with every new
 * snapshot: endpoints, subset labels and the merged policy are re-read; hosts that stay keep
 * their state; a destination that no longer resolves to anything is closed. Endpoints found by
 * DNS are kept in step with the answers (`change` events of the DNS source), and a name is
 * watched while at least one cluster uses it.
 */
export class ClusterManager {
  private readonly entries = new Map<string, Entry>();
  /** DNS watch key → entries using it; a watch is dropped with its last user. */
  private readonly watchUsers = new Map<string, Set<Entry>>();
  /** Kubernetes Service key → entries whose endpoints come from it. */
  private readonly serviceUsers = new Map<string, Set<Entry>>();
  private snapshot: Snapshot | undefined;
  private closed = false;
  /** Service host → the breaker the application configured for it. */
  private readonly breakers = new Map<string, ServiceBreaker>();
  /** Pools whose HTTP/2 PING timeouts run on the mesh clock, unless `deps.poolFactory` stands in. */
  private readonly clockPools: PoolFactory;
  private readonly onDnsChange = (change: DnsEndpointChange): void => {
    const users = this.watchUsers.get(change.key);
    if (users) for (const entry of users) this.refresh(entry);
  };

  private readonly onKubeChange = (serviceKey: string): void => {
    const users = this.serviceUsers.get(serviceKey);
    if (users) for (const entry of users) this.refresh(entry);
  };

  /** New workload certificates: every cluster's mesh pools are replaced (new connections, new pair). */
  private readonly onRotation = (_bundle: CertificateBundle): void => {
    for (const entry of this.entries.values()) entry.cluster.certificatesRotated();
  };

  /**
   * Bumped whenever DestinationRule client credentials change: TLS resolved before (the
   * dispatcher's pass-through memo) is stale.
   */
  tlsVersion = 0;

  /** New client credentials: every cluster resolves its TLS again (new connections, new credentials). */
  private readonly onCredentials = (): void => {
    this.tlsVersion++;
    const snapshot = this.snapshot;
    if (!snapshot || this.closed) return;
    for (const entry of this.entries.values()) entry.cluster.setTls(...this.clusterTls(snapshot, entry.host, entry.subset, entry.port));
  };

  /** Per snapshot: the mTLS mode istiod infers for a namespace's services. */
  private readonly namespaceModes = new WeakMap<Snapshot, Map<string, MtlsMode>>();

  constructor(private readonly deps: ClusterManagerDeps) {
    this.clockPools = poolFactoryOn(deps.clock);
    deps.dns?.on('change', this.onDnsChange);
    deps.kube?.on('change', this.onKubeChange);
    deps.security?.certificates?.on('rotated', this.onRotation);
    deps.credentials?.on('changed', this.onCredentials);
  }

  setSnapshot(snapshot: Snapshot): void {
    this.prepare(snapshot)();
  }

  /**
   * Builds what `snapshot` changes in the clusters made so far (endpoint plans, balancers,
   * connection-pool, outlier and TLS settings) without applying any of it, and returns what
   * applies it. Throws a `MeshConfigError` naming the DestinationRule when a cluster's balancer
   * cannot be built: the clusters then keep serving the snapshot in force, untouched.
   */
  prepare(snapshot: Snapshot): () => void {
    const staged: Staged[] = [];
    for (const entry of this.entries.values()) {
      const { host, subset, port } = entry;
      const plan = planEndpoints(snapshot, host, subset, port, this.deps.dns, this.deps.kube);
      if (plan === undefined) {
        staged.push({ entry, plan });
        continue;
      }
      const lb = this.loadBalancing(snapshot, host, subset, port);
      let balancer: PriorityBalancer;
      try {
        balancer = entry.cluster.buildBalancer(lb);
      } catch (error) {
        throw balancerFailure(snapshot, entry, error);
      }
      staged.push({ entry, plan, lb, balancer, resilience: this.resilience(snapshot, host, subset, port), tls: this.clusterTls(snapshot, host, subset, port) });
    }
    return () => {
      this.snapshot = snapshot;
      for (const step of staged) {
        const entry = step.entry;
        if (step.plan === undefined) {
          this.entries.delete(entry.key);
          this.releaseAll(entry);
          this.follow(entry, undefined);
          void entry.cluster.close();
          continue;
        }
        entry.cluster.setLoadBalancing(step.lb, step.balancer);
        entry.cluster.setResilience(step.resilience);
        entry.cluster.setTls(...step.tls);
        this.apply(entry, step.plan);
      }
    };
  }

  /**
   * The cluster for a destination, or undefined when nothing gives it endpoints (the caller then
   * passes the request through to the address as asked). A cluster whose endpoints come from
   * DNS is returned at once; while its first answer is pending, `cluster.warming` is set.
   */
  get(host: string, subset: string | undefined, port: number): Cluster | undefined {
    const key = `${host}|${subset ?? ''}|${port}`;
    const existing = this.entries.get(key);
    if (existing) return existing.cluster;
    const snapshot = this.snapshot;
    if (!snapshot || this.closed) return undefined;
    const plan = planEndpoints(snapshot, host, subset, port, this.deps.dns, this.deps.kube);
    if (plan === undefined) return undefined;
    const cluster = new Cluster(
      key,
      this.loadBalancing(snapshot, host, subset, port),
      {
        clock: this.deps.clock,
        random: this.deps.random,
        poolFactory: this.deps.poolFactory ?? this.clockPools,
        certificates: this.deps.security?.certificates,
      },
      this.resilience(snapshot, host, subset, port),
    );
    cluster.setTls(...this.clusterTls(snapshot, host, subset, port));
    cluster.breaker = this.breakers.get(host);
    const onEjection = this.deps.onEjection;
    if (onEjection) {
      cluster.onEjection = (h, change) =>
        onEjection({
          action: change.action,
          host,
          subset,
          port,
          endpoint: `${h.endpoint.address.includes(':') ? `[${h.endpoint.address}]` : h.endpoint.address}:${h.endpoint.port}`,
          reason: change.reason,
          ejections: change.ejections,
          durationMs: change.durationMs,
        });
    }
    const entry: Entry = {
      key,
      host,
      subset,
      port,
      cluster,
      plan,
      serviceKey: undefined,
      kubeProtocol: undefined,
      watchKeys: [],
      settling: undefined,
      filled: false,
    };
    this.entries.set(key, entry);
    this.apply(entry, plan);
    return cluster;
  }

  /**
   * Whether a host that no configuration knows is a Kubernetes service the mesh finds by DNS
   * itself: `name.ns.svc.<clusterDomain>` written by the caller with its namespace (`name.ns`,
   * `name.ns.svc` or in full). A bare `name` stays with the system resolver, which applies the
   * pod's search path and also knows `localhost`, /etc/hosts and docker-compose names.
   */
  discovers(host: string, writtenHost: string): boolean {
    const snapshot = this.snapshot;
    if (snapshot === undefined || !isKubernetesServiceHost(host, snapshot.clusterDomain)) return false;
    if (!isImportedKubernetesService(snapshot, host)) return false;
    if (writtenHost.includes('.')) return this.deps.dns !== undefined || this.deps.kube !== undefined;
    // A bare name is the mesh's only when the API has that Service in the caller's namespace.
    return this.deps.kube?.knows(host) ?? false;
  }

  /**
   * The protocol a Kubernetes Service gives `port` of `host` (appProtocol, else the port name's
   * prefix), from API discovery; undefined for other hosts or when the Service does not say.
   */
  portProtocol(host: string, port: number): string | undefined {
    const kube = this.deps.kube;
    const snapshot = this.snapshot;
    if (kube === undefined || snapshot === undefined || !isKubernetesServiceHost(host, snapshot.clusterDomain)) return undefined;
    const ref = kube.parse(host);
    return ref ? kube.protocol(ref, port) : undefined;
  }

  /**
   * For a host {@link discovers} declined: a promise while the answer may still change because
   * the caller's namespace has not listed its Services yet (a bare name at startup), bounded by
   * the source's warm-up; undefined otherwise. The caller asks again once it settles.
   */
  discoveryPending(host: string, writtenHost: string): Promise<void> | undefined {
    const kube = this.deps.kube;
    const snapshot = this.snapshot;
    if (kube === undefined || snapshot === undefined || writtenHost.includes('.') || !isKubernetesServiceHost(host, snapshot.clusterDomain)) return undefined;
    return kube.pending(host);
  }

  /**
   * Puts `breaker` in front of every cluster of service `host` (all subsets and ports), now and
   * for clusters made later; undefined removes it.
   */
  setBreaker(host: string, breaker: ServiceBreaker | undefined): void {
    if (breaker) this.breakers.set(host, breaker);
    else this.breakers.delete(host);
    for (const entry of this.entries.values()) if (entry.host === host) entry.cluster.breaker = breaker;
  }

  /** The clusters made so far, for inspection. */
  *active(): IterableIterator<ActiveCluster> {
    for (const e of this.entries.values()) yield { host: e.host, subset: e.subset, port: e.port, cluster: e.cluster, dnsKeys: e.watchKeys };
  }

  /** The compiled policy a cluster for this destination would have (inspection of clusters not made yet). */
  policyFor(
    host: string,
    subset: string | undefined,
    port: number,
  ): { readonly loadBalancing: CompiledLoadBalancing; readonly resilience: ClusterResilience } | undefined {
    const snapshot = this.snapshot;
    if (!snapshot) return undefined;
    return { loadBalancing: this.loadBalancing(snapshot, host, subset, port), resilience: this.resilience(snapshot, host, subset, port) };
  }

  /**
   * The DestinationRule TLS for a destination without a cluster (pass-through: resolution NONE,
   * or a host no ServiceEntry declares), which the caller memoizes per snapshot.
   */
  tlsFor(host: string, subset: string | undefined, port: number): ResolvedTls | undefined {
    const snapshot = this.snapshot;
    return snapshot ? this.tls(snapshot, host, subset, port) : undefined;
  }

  /** Mesh mTLS a cluster for this destination would speak (ISTIO_MUTUAL or auto mTLS), for inspection. */
  meshTlsFor(host: string, subset: string | undefined, port: number): MeshTls | undefined {
    const snapshot = this.snapshot;
    if (!snapshot) return undefined;
    const [tls, auto] = this.clusterTls(snapshot, host, subset, port);
    return tls?.kind === 'mesh' ? tls : auto;
  }

  /** Every cluster in use and the counts of its endpoints by state (for metrics). */
  *health(): Generator<ClusterHealth> {
    for (const entry of this.entries.values()) {
      yield { cluster: entry.key, service: entry.host, subset: entry.subset, ...entry.cluster.endpointStates() };
    }
  }

  /** `force`: connections are cut, not drained (close() has already drained the callers' requests). */
  async close(force = false): Promise<void> {
    this.closed = true;
    this.deps.dns?.off('change', this.onDnsChange);
    this.deps.kube?.off('change', this.onKubeChange);
    this.deps.security?.certificates?.off('rotated', this.onRotation);
    this.deps.credentials?.off('changed', this.onCredentials);
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) this.releaseAll(entry);
    this.serviceUsers.clear();
    await Promise.all(all.map((e) => e.cluster.close(force)));
  }

  private loadBalancing(snapshot: Snapshot, host: string, subset: string | undefined, port: number): CompiledLoadBalancing {
    const rule = snapshot.destinationRule(host);
    const subsetDef = subset ? rule?.subsets.get(subset) : undefined;
    const policy = mergeTrafficPolicy(rule?.trafficPolicy, subsetDef?.trafficPolicy, port);
    // The port's declared protocol decides HTTP/2 (GRPC, HTTP2), as it does in istiod.
    const service = snapshot.service(host);
    const servicePort = servicePortFor(service, port);
    const kubeService = servicePort === undefined ? this.deps.kube?.parse(host) : undefined;
    const protocol = servicePort?.protocol ?? (kubeService ? this.deps.kube?.protocol(kubeService, port) : undefined);
    return compileLoadBalancing(policy, rule?.annotations ?? {}, this.deps.caller, protocol);
  }

  private resilience(snapshot: Snapshot, host: string, subset: string | undefined, port: number): ClusterResilience {
    const rule = snapshot.destinationRule(host);
    const subsetDef = subset ? rule?.subsets.get(subset) : undefined;
    return compileResilience(mergeTrafficPolicy(rule?.trafficPolicy, subsetDef?.trafficPolicy, port));
  }

  /**
   * The DestinationRule TLS in force for the destination (the merged policy's `tls`, compiled
   * with the snapshot), resolved for it: ISTIO_MUTUAL with the destination's SNI and identities,
   * SIMPLE and MUTUAL of a ServiceEntry host checking its `subjectAltNames` when the rule names
   * none (istiod's constructUpstreamTLS for the External registry).
   */
  private tls(snapshot: Snapshot, host: string, subset: string | undefined, port: number): ResolvedTls | undefined {
    const rule = snapshot.destinationRule(host);
    if (!rule) return undefined;
    const subsetDef = subset ? rule.subsets.get(subset) : undefined;
    const compiled = snapshot.upstreamTls(mergeTrafficPolicy(rule.trafficPolicy, subsetDef?.trafficPolicy, port)?.['tls']);
    if (compiled?.kind === 'istio-mutual') return this.istioMutual(snapshot, host, subset, port, compiled);
    if (compiled?.kind === 'originate' && compiled.subjectAltNames === undefined && !compiled.insecureSkipVerify && compiled.mode !== 'URL') {
      const service = snapshot.service(host);
      if (service && (service.subjectAltNames?.length || service.serviceAccounts?.length)) {
        const sans = this.identities(snapshot, host);
        if (sans.length > 0)
          return this.credentialsOf(Object.freeze({ ...compiled, subjectAltNames: Object.freeze(sans), id: `${compiled.id}|${JSON.stringify(sans)}` }));
      }
    }
    return compiled?.kind === 'originate' ? this.credentialsOf(compiled) : compiled;
  }

  /** The settings with the client credentials in force now (a Secret's, the files' latest), or why there are none. */
  private credentialsOf(tls: TlsOrigination): TlsOrigination | TlsUnavailable {
    const ref = tls.credential;
    if (!ref) return tls;
    if (this.deps.credentials) return this.deps.credentials.resolve(tls);
    if (ref.kind === 'files') {
      if (!ref.refused) return tls;
      const failure = { resource: ref.resource, path: `${ref.path}.${ref.refused.field}`, secret: undefined, files: ref.files, reason: ref.refused.message };
      return { kind: 'unavailable', failure, pending: undefined };
    }
    const reason = 'no Kubernetes API is configured to read it from (credentialName is read through the API)';
    return { kind: 'unavailable', failure: { resource: ref.resource, path: ref.path, secret: `${ref.namespace}/${ref.name}`, reason }, pending: undefined };
  }

  /** The rule's TLS and, where the rule says nothing about TLS, auto mTLS. */
  private clusterTls(snapshot: Snapshot, host: string, subset: string | undefined, port: number): [ResolvedTls | undefined, MeshTls | undefined] {
    const tls = this.tls(snapshot, host, subset, port);
    return [tls, tls === undefined ? this.autoMtls(snapshot, host, subset, port) : undefined];
  }

  private istioMutual(snapshot: Snapshot, host: string, subset: string | undefined, port: number, rule: TlsIstioMutual): MeshTls {
    return resolveMeshTls({
      host,
      subset,
      port,
      source: rule.source,
      auto: false,
      sni: rule.sni,
      subjectAltNames: rule.subjectAltNames,
      serviceAccounts: rule.subjectAltNames === undefined ? this.identities(snapshot, host) : [],
      trustDomains: this.trustDomains(),
    });
  }

  /**
   * Istio's auto mTLS for a destination whose DestinationRule says nothing about TLS: on when the
   * mesh has workload certificates, the service is in the mesh (a Kubernetes service, or a
   * ServiceEntry with `location: MESH_INTERNAL`) and its namespace's PeerAuthentication is not
   * DISABLE; then mTLS goes to the endpoints of the mesh only, plaintext to the others.
   */
  private autoMtls(snapshot: Snapshot, host: string, subset: string | undefined, port: number): MeshTls | undefined {
    const security = this.deps.security;
    if (!security?.autoMtls || !security.certificates) return undefined;
    const service = snapshot.service(host);
    const kubernetes = !service && isKubernetesServiceHost(host, snapshot.clusterDomain);
    if (service ? service.location !== 'MESH_INTERNAL' : !kubernetes) return undefined;
    const namespace = service ? service.namespace : kubernetesNamespace(host, snapshot.clusterDomain);
    if (this.namespaceMode(snapshot, namespace) === 'DISABLE') return undefined;
    return resolveMeshTls({
      host,
      subset,
      port,
      source: 'auto mTLS',
      auto: true,
      serviceAccounts: this.identities(snapshot, host),
      trustDomains: security.trustDomains,
    });
  }

  private namespaceMode(snapshot: Snapshot, namespace: string): MtlsMode {
    let modes = this.namespaceModes.get(snapshot);
    if (!modes) this.namespaceModes.set(snapshot, (modes = new Map()));
    let mode = modes.get(namespace);
    if (mode === undefined) {
      mode = namespaceMtlsMode(snapshot.resources, snapshot.rootNamespace, namespace);
      modes.set(namespace, mode);
    }
    return mode;
  }

  /** The identities of the destination's workloads (ServiceEntry and WorkloadEntries, or the Kubernetes Service's annotations). */
  private identities(snapshot: Snapshot, host: string): string[] {
    const service = snapshot.service(host);
    if (service) return serviceIdentities([service], this.trustDomains());
    const ref = this.deps.kube?.parse(host);
    const declared = ref && this.deps.kube?.serviceAccounts(ref);
    return declared ? serviceIdentities([declared], this.trustDomains()) : [];
  }

  private trustDomains(): TrustDomains {
    return this.deps.security?.trustDomains ?? DEFAULT_TRUST_DOMAINS;
  }

  /** Makes `plan` the entry's: static endpoints at once, DNS ones once their names have answered. */
  private apply(entry: Entry, plan: EndpointPlan): void {
    entry.plan = plan;
    if (plan.kind === 'kubernetes') {
      this.applyKubernetes(entry, plan.service.key, plan.service.namespace);
      return;
    }
    this.follow(entry, undefined);
    const dns = this.deps.dns;
    if (plan.kind === 'static' || !dns) {
      this.releaseAll(entry);
      entry.settling = undefined;
      entry.cluster.warming = undefined;
      this.setEndpoints(entry, plan.kind === 'static' ? plan.endpoints : [], plan.kind === 'static' ? plan.emptyReason : undefined);
      return;
    }
    const keys = [...new Set(plan.bindings.map((b) => b.key))];
    for (const b of plan.bindings) if (!entry.watchKeys.includes(b.key)) this.acquire(b.key, b.spec, entry);
    for (const key of entry.watchKeys) if (!keys.includes(key)) this.release(key, entry);
    entry.watchKeys = keys;
    // Only a first lookup still in flight is worth waiting for; a name that has failed before
    // answers with its error at once (and is retried in the background).
    const pending = keys.filter((key) => {
      const status = dns.status(key);
      return status !== undefined && status.endpoints === undefined && status.lastError === undefined;
    });
    if (pending.length === 0) {
      entry.settling = undefined;
      entry.cluster.warming = undefined;
      this.refresh(entry);
      return;
    }
    this.settleOn(entry, Promise.allSettled(pending.map((key) => dns.ready(key))));
  }

  /**
   * Refreshes the entry once `pending` settles, unless a later plan replaced it meanwhile; a new
   * cluster (or one still warming) holds its first requests until then.
   */
  private settleOn(entry: Entry, pending: Promise<unknown>): void {
    const settling: Promise<void> = pending.then(() => {
      if (entry.cluster.warming === settling) entry.cluster.warming = undefined;
      if (entry.settling !== settling) return;
      entry.settling = undefined;
      this.refresh(entry);
    });
    entry.settling = settling;
    if (!entry.filled || entry.cluster.warming) entry.cluster.warming = settling;
  }

  /**
   * A Kubernetes entry follows its Service's changes; until the namespace's collections have
   * listed, a new cluster warms (its first requests wait) and an existing one keeps its endpoints.
   */
  private applyKubernetes(entry: Entry, serviceKey: string, namespace: string): void {
    const kube = this.deps.kube;
    if (!kube) return;
    this.releaseAll(entry);
    this.follow(entry, serviceKey);
    const pending = kube.ready(namespace);
    if (pending === undefined) {
      entry.settling = undefined;
      entry.cluster.warming = undefined;
      this.refresh(entry);
      return;
    }
    this.settleOn(entry, pending);
  }

  private follow(entry: Entry, serviceKey: string | undefined): void {
    if (entry.serviceKey === serviceKey) return;
    if (entry.serviceKey !== undefined) {
      const users = this.serviceUsers.get(entry.serviceKey);
      users?.delete(entry);
      if (users?.size === 0) this.serviceUsers.delete(entry.serviceKey);
    }
    entry.serviceKey = serviceKey;
    if (serviceKey === undefined) return;
    let users = this.serviceUsers.get(serviceKey);
    if (!users) this.serviceUsers.set(serviceKey, (users = new Set()));
    users.add(entry);
  }

  /** Recomputes a DNS or Kubernetes entry's endpoints from the source's latest state. */
  private refresh(entry: Entry): void {
    const plan = entry.plan;
    if (this.closed || entry.settling || this.entries.get(entry.key) !== entry) return;
    if (plan.kind === 'kubernetes') {
      const kube = this.deps.kube;
      if (!kube) return;
      // A Service port named `grpc-*` (or with appProtocol) switches the cluster to HTTP/2.
      const protocol = kube.protocol(plan.service, plan.port);
      if (protocol !== entry.kubeProtocol && this.snapshot) {
        entry.kubeProtocol = protocol;
        entry.cluster.setLoadBalancing(this.loadBalancing(this.snapshot, entry.host, entry.subset, entry.port));
      }
      // The Service's annotations may name other service accounts now.
      if (this.snapshot) entry.cluster.setTls(...this.clusterTls(this.snapshot, entry.host, entry.subset, entry.port));
      const { endpoints, reason, terminating } = kubernetesPlanEndpoints(plan, kube.endpoints(plan.service, plan.host, plan.port));
      this.setEndpoints(entry, endpoints, reason);
      entry.cluster.terminatingEndpoints = terminating;
      return;
    }
    const dns = this.deps.dns;
    if (plan.kind !== 'dns' || !dns) return;
    const { endpoints, reason } = dnsPlanEndpoints(plan, (key) => dns.status(key));
    this.setEndpoints(entry, endpoints, reason);
  }

  private setEndpoints(entry: Entry, endpoints: readonly Endpoint[], reason: string | undefined): void {
    entry.cluster.setEndpoints(endpoints, !entry.filled);
    entry.cluster.unavailableReason = endpoints.length === 0 ? reason : undefined;
    entry.filled = true;
  }

  private acquire(key: string, spec: Parameters<DnsEndpointSource['watch']>[0], entry: Entry): void {
    let users = this.watchUsers.get(key);
    if (!users) {
      this.deps.dns?.watch({ ...spec, key });
      users = new Set();
      this.watchUsers.set(key, users);
    }
    users.add(entry);
  }

  private release(key: string, entry: Entry): void {
    const users = this.watchUsers.get(key);
    if (!users) return;
    users.delete(entry);
    if (users.size === 0) {
      this.watchUsers.delete(key);
      this.deps.dns?.unwatch(key);
    }
  }

  private releaseAll(entry: Entry): void {
    for (const key of entry.watchKeys) this.release(key, entry);
    entry.watchKeys = [];
  }
}
