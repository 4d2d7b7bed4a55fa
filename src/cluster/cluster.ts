import type { Host, PriorityBalancer } from '../balancer/index.js';
import { createClusterBalancer, createHost, NO_PICK_CONTEXT } from '../balancer/index.js';
import type { MeshClock, RandomSource } from '../clock.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { CompiledLoadBalancing, HashOn } from '../config/compile/load-balancing.js';
import type { ConnectionLimits } from '../resilience/connection-limits.js';
import { ClusterLimits, UNLIMITED } from '../resilience/connection-limits.js';
import type { ConnectionSettings, LimitsPolicy } from '../resilience/connection-pool-policy.js';
import { DEFAULT_CONNECTION_SETTINGS } from '../resilience/connection-pool-policy.js';
import type { EjectionChange, EjectionState } from '../resilience/outlier-detector.js';
import { OutlierDetector } from '../resilience/outlier-detector.js';
import type { OutlierPolicy } from '../resilience/outlier-policy.js';
import type { AttemptOutcome } from '../resilience/outcome.js';
import type { ServiceBreaker } from '../resilience/service-breaker.js';
import type { MeshError } from '../errors.js';
import { TlsCredentialUnavailableError, TlsNotSupportedError } from '../security/errors.js';
import type { MeshTls, MeshTlsCredentials } from '../security/mesh-tls.js';
import { isMeshEndpoint, meshTlsCredentials, meshTlsRefusal } from '../security/mesh-tls.js';
import type { EndpointPool, PoolFactory, PoolOptions } from '../transport/pool-factory.js';
import { samePoolOptions } from '../transport/pool-factory.js';
import type { TlsDisabled, TlsOrigination, TlsUnavailable, TlsUnsupported } from '../security/tls-settings.js';
import { URL_TLS } from '../security/tls-settings.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';

/**
 * The TLS a destination's DestinationRule asks for, resolved for the destination: `ISTIO_MUTUAL`
 * becomes {@link MeshTls} (its SNI and expected identities are the destination's).
 */
export type ResolvedTls = TlsOrigination | TlsDisabled | TlsUnsupported | TlsUnavailable | MeshTls;

/** The error of TLS that cannot be originated (not implemented, credentials unavailable); undefined otherwise. */
export function tlsFailure(tls: ResolvedTls | undefined): MeshError | undefined {
  if (tls?.kind === 'unsupported') return new TlsNotSupportedError(tls);
  if (tls?.kind === 'unavailable') return new TlsCredentialUnavailableError(tls.failure);
  return undefined;
}

const failsClosed = (tls: ResolvedTls | undefined): boolean => tls?.kind === 'unsupported' || tls?.kind === 'unavailable';

/** What a new snapshot says about a cluster's resilience (compiled from its merged policy). */
export interface ClusterResilience {
  readonly outlier: OutlierPolicy | undefined;
  readonly limits: LimitsPolicy | undefined;
  readonly connections: ConnectionSettings;
}

export const NO_RESILIENCE: ClusterResilience = Object.freeze({
  outlier: undefined,
  limits: undefined,
  connections: DEFAULT_CONNECTION_SETTINGS,
});

/** `host:port`, with the subset, from a cluster's name (`host|subset|port`), for messages. */
function destinationText(name: string): string {
  const [host = name, subset = '', port = ''] = name.split('|');
  return `${host}:${port}${subset ? ` (subset ${subset})` : ''}`;
}

/**
 * The running side of one destination (service host, subset, port): its hosts with their live
 * state, its balancer, one connection pool per endpoint (created on first use, closed when the
 * endpoint leaves), and its resilience: connection limits, outlier detection and the service's
 * breaker.
 */
export class Cluster {
  private hosts: Host[] = [];
  private byKey = new Map<string, Host>();
  /** Per endpoint: plaintext, or the DestinationRule's TLS when it originates TLS. */
  private readonly pools = new Map<string, EndpointPool>();
  /** Per endpoint, for `https://` URLs while the DestinationRule originates no TLS itself. */
  private readonly urlTlsPools = new Map<string, EndpointPool>();
  /** The pools of {@link pools} that speak mesh mTLS (a rotation replaces these only). */
  private readonly meshPools = new Set<EndpointPool>();
  /** The DestinationRule's TLS for this destination (top level < subset < port merged). */
  private tls: ResolvedTls | undefined = undefined;
  /** Mesh mTLS: the rule's ISTIO_MUTUAL, or auto mTLS (endpoints of the mesh only). */
  private mesh: MeshTls | undefined = undefined;
  private balancer: PriorityBalancer;
  hashOn: HashOn | undefined;
  passthrough: boolean;
  /** Hedging delay (ms) for idempotent requests; 0 when off. */
  hedgeAfterMs: number;
  private http2: boolean;
  private connectionSettings: ConnectionSettings = DEFAULT_CONNECTION_SETTINGS;
  private poolOptions: PoolOptions;
  private outlier: OutlierDetector | undefined;
  private lb: CompiledLoadBalancing;
  private resilience: ClusterResilience = NO_RESILIENCE;
  /**
   * Set while a new cluster waits for the first DNS answers behind it: the dispatcher holds the
   * first requests until it settles. Undefined at all other times, so later requests never wait.
   */
  warming: Promise<void> | undefined = undefined;
  /**
   * Why the cluster has no endpoints (the body of its 503), when it has none for a known reason:
   * a DNS lookup that never succeeded, a name without records, a subset that selects nothing.
   */
  unavailableReason: string | undefined = undefined;
  /** Connection-pool limits (Envoy's circuit breakers) every attempt passes through. */
  limits: ConnectionLimits = UNLIMITED;
  /** The destination service's breaker, when the application configured one. */
  breaker: ServiceBreaker | undefined = undefined;
  /** Told when outlier detection ejects or returns a host. */
  onEjection: ((host: Host, change: EjectionChange) => void) | undefined = undefined;

  constructor(
    readonly name: string,
    lb: CompiledLoadBalancing,
    private readonly deps: { clock: MeshClock; random: RandomSource; poolFactory: PoolFactory; certificates?: WorkloadCertificates | undefined },
    resilience: ClusterResilience = NO_RESILIENCE,
  ) {
    this.balancer = createClusterBalancer(lb.spec, deps);
    this.lb = lb;
    this.hashOn = lb.hashOn;
    this.passthrough = lb.passthrough;
    this.hedgeAfterMs = lb.hedgeAfterMs;
    this.http2 = lb.http2;
    this.poolOptions = this.computePoolOptions();
    this.setResilience(resilience);
  }

  /**
   * The balancer a new snapshot's policy would use, already holding this cluster's hosts. Throws
   * what the policy refuses; nothing of the cluster changes until {@link setLoadBalancing}.
   */
  buildBalancer(lb: CompiledLoadBalancing): PriorityBalancer {
    const balancer = createClusterBalancer(lb.spec, this.deps);
    balancer.update(this.hosts);
    return balancer;
  }

  /**
   * Replaces the balancing policy (a new snapshot changed it); host state is kept. `balancer` is
   * {@link buildBalancer}'s, made while the snapshot was staged.
   */
  setLoadBalancing(lb: CompiledLoadBalancing, balancer: PriorityBalancer = this.buildBalancer(lb)): void {
    this.balancer = balancer;
    this.lb = lb;
    this.hashOn = lb.hashOn;
    this.passthrough = lb.passthrough;
    this.hedgeAfterMs = lb.hedgeAfterMs;
    this.http2 = lb.http2;
    this.applyConnectionSlots();
    this.refreshPools();
  }

  /** HTTP/1.1 carries one request per connection: `tcp.maxConnections` requests can be on the wire. */
  private applyConnectionSlots(): void {
    if (this.limits instanceof ClusterLimits) this.limits.setConnectionSlots(this.http2 ? undefined : this.resilience.connections.maxConnections);
  }

  /**
   * Applies a new snapshot's connection pool, outlier detection and retry budget. Counters,
   * ejections and in-flight requests carry over; connection options that changed apply to new
   * connections (the old pools finish what they carry, then close).
   */
  setResilience(resilience: ClusterResilience): void {
    this.resilience = resilience;
    const limits = resilience.limits;
    if (limits === undefined) this.limits = UNLIMITED;
    else if (this.limits instanceof ClusterLimits) this.limits.setPolicy(limits);
    else this.limits = new ClusterLimits(this.name, limits, this.deps.clock);
    this.applyConnectionSlots();

    const outlier = resilience.outlier;
    if (outlier === undefined) {
      if (this.outlier) {
        // Detection was switched off: every ejected host returns at once.
        const detector = this.outlier;
        this.outlier = undefined;
        detector.releaseAll();
      }
    } else if (this.outlier) {
      this.outlier.setPolicy(outlier);
    } else {
      this.outlier = new OutlierDetector(outlier, { clock: this.deps.clock, onChange: this.ejectionChanged });
      this.outlier.setHosts(this.hosts);
    }

    this.connectionSettings = resilience.connections;
    this.refreshPools();
  }

  /**
   * Applies a new snapshot's TLS for this destination: the DestinationRule's, and auto mTLS when
   * the rule says nothing about TLS. Connections made under other settings are never reused: the
   * old pools finish what they carry, then close.
   */
  setTls(tls: ResolvedTls | undefined, auto?: MeshTls): void {
    const before = this.tls;
    this.tls = tls;
    this.mesh = tls?.kind === 'mesh' ? tls : tls === undefined ? auto : undefined;
    if (failsClosed(tls) && !failsClosed(before)) this.closePools();
    this.refreshPools();
  }

  /**
   * The DestinationRule's TLS for this destination, compiled with the snapshot; `unsupported`
   * (credentialName): every request fails with {@link TlsNotSupportedError}.
   */
  get upstreamTls(): ResolvedTls | undefined {
    return this.tls;
  }

  /** Mesh mTLS to this destination (ISTIO_MUTUAL or auto mTLS), for inspection. */
  get meshTls(): MeshTls | undefined {
    return this.mesh;
  }

  /**
   * Why no request can be sent to this destination now, before one is tried: TLS the mesh does
   * not implement, or mesh mTLS without workload certificates (auto mTLS only when an endpoint
   * of the mesh is there). Never the upstream's fault: not retried, not counted against a pod.
   */
  tlsRefusal(): MeshError | undefined {
    const failure = tlsFailure(this.tls);
    if (failure) return failure;
    const mesh = this.mesh;
    if (mesh === undefined || this.deps.certificates?.current) return undefined;
    // Auto mTLS only concerns the endpoints of the mesh, which a pass-through cluster never uses.
    if (mesh.auto && (this.passthrough || !this.hosts.some((h) => isMeshEndpoint(h.endpoint)))) return undefined;
    return meshTlsRefusal(mesh, destinationText(this.name), this.deps.certificates);
  }

  /** The workload's certificates rotated: new connections use the new ones, the old drain. */
  certificatesRotated(): void {
    this.refreshPools();
  }

  /** Whether connections to `endpoint` speak mesh mTLS. */
  private meshFor(endpoint: Endpoint): boolean {
    const mesh = this.mesh;
    return mesh !== undefined && (!mesh.auto || isMeshEndpoint(endpoint));
  }

  /** Applies a new endpoint set; hosts that stay keep their in-flight and latency state. */
  setEndpoints(endpoints: readonly Endpoint[], initial: boolean): void {
    const next = new Map<string, Host>();
    const now = initial ? -Infinity : this.deps.clock.now();
    const moved: string[] = [];
    for (const endpoint of endpoints) {
      if (next.has(endpoint.key)) continue;
      const existing = this.byKey.get(endpoint.key);
      let host: Host;
      if (existing) {
        // The same object stays: requests in flight hold it and count themselves off it when they
        // end, so a copy would keep their count forever.
        // An endpoint that gained or lost the mesh's certificates (auto mTLS) needs a new pool too.
        if (
          existing.endpoint.address !== endpoint.address ||
          existing.endpoint.port !== endpoint.port ||
          isMeshEndpoint(existing.endpoint) !== isMeshEndpoint(endpoint)
        )
          moved.push(endpoint.key);
        if (existing.endpoint !== endpoint) (existing as { endpoint: Endpoint }).endpoint = endpoint;
        host = existing;
      } else {
        host = createHost(endpoint, now);
      }
      // An ejected host stays out of balancing until outlier detection returns it.
      host.healthy = endpoint.ready && !(this.outlier?.isEjected(host) ?? false);
      next.set(endpoint.key, host);
    }
    for (const pools of [this.pools, this.urlTlsPools]) {
      for (const [key, pool] of pools) {
        // A logical DNS endpoint keeps its key while its address follows the answer: new requests
        // connect to the new address, the old connections finish what they carry.
        if (!next.has(key) || moved.includes(key)) {
          pools.delete(key);
          this.meshPools.delete(pool);
          // Let in-flight requests finish; new ones go elsewhere.
          void pool.close().catch(() => undefined);
        }
      }
    }
    this.byKey = next;
    this.hosts = [...next.values()];
    this.outlier?.setHosts(this.hosts);
    // Each endpoint's share of `maxConnections` follows the endpoint count.
    this.refreshPools();
    this.balancer.update(this.hosts);
  }

  get size(): number {
    return this.hosts.length;
  }

  /** The live hosts, for inspection (read-only: the data path owns their state). */
  get hostList(): readonly Host[] {
    return this.hosts;
  }

  /** The compiled policy in force, for inspection. */
  get policy(): { readonly loadBalancing: CompiledLoadBalancing; readonly resilience: ClusterResilience } {
    return { loadBalancing: this.lb, resilience: this.resilience };
  }

  /** When outlier detection returns `host` (clock ms) and how often it was ejected; undefined when not ejected. */
  ejection(host: Host): EjectionState | undefined {
    return this.outlier?.ejection(host);
  }

  /** A host for the next attempt; `exclude` steers retries away from hosts already tried. */
  pick(hash: number | undefined, exclude?: (host: Host) => boolean, avoidPriorities?: ReadonlySet<number>): Host | undefined {
    if (exclude || avoidPriorities)
      return this.balancer.pick({ ...(hash === undefined ? {} : { hash }), ...(exclude ? { exclude } : {}), ...(avoidPriorities ? { avoidPriorities } : {}) });
    return this.balancer.pick(hash === undefined ? NO_PICK_CONTEXT : { hash });
  }

  /** The priority level of `host` (locality failover), for retries to other localities. */
  priorityOf(host: Host): number | undefined {
    return this.balancer.priorityOf(host);
  }

  /** DestinationRule `tcp.connectTimeout` (Istio's default 10 s): transports other than undici's pools time their connections with it. */
  get connectTimeoutMs(): number {
    return this.connectionSettings.connectTimeoutMs;
  }

  /** How an attempt to `host` ended: fed to outlier detection. */
  report(host: Host, outcome: AttemptOutcome): void {
    this.outlier?.report(host, outcome);
  }

  /** A response's status from `host`; no outcome is made when outlier detection is off. */
  reportStatus(host: Host, status: number): void {
    this.outlier?.report(host, { status, failure: undefined });
  }

  /**
   * Endpoints discovery reports terminating, kept out of the balancer (Kubernetes: slice endpoints
   * with `terminating`), counted for the endpoints gauge only.
   */
  terminatingEndpoints: readonly Endpoint[] = [];

  /** Endpoint counts by state, for the endpoints gauge: ready and in balancing, ejected, terminating. */
  endpointStates(): { healthy: number; ejected: number; terminating: number } {
    let healthy = 0;
    let ejected = 0;
    let terminating = this.terminatingEndpoints.length;
    for (const host of this.hosts) {
      if (!host.endpoint.ready) terminating++;
      else if (this.outlier?.isEjected(host)) ejected++;
      else if (host.healthy) healthy++;
    }
    return { healthy, ejected, terminating };
  }

  /** Whether outlier detection has ejected `host` now. */
  isEjected(host: Host): boolean {
    return this.outlier?.isEjected(host) ?? false;
  }

  /**
   * The connection pool of `host`. `urlTls`: the request's URL is `https://`, so TLS is
   * originated even where the DestinationRule asks for none (an endpoint spoken to with mesh
   * mTLS gets that, one TLS session). Throws {@link TlsNotSupportedError} when the
   * DestinationRule asks for TLS the mesh does not implement, and the error of
   * {@link tlsRefusal} for mesh mTLS without certificates: nothing is ever sent in plaintext
   * instead.
   */
  pool(host: Host, urlTls = false): EndpointPool {
    const pools = urlTls && this.poolOptions.tls === undefined && !this.meshFor(host.endpoint) ? this.urlTlsPools : this.pools;
    return pools.get(host.endpoint.key) ?? this.newPool(host, pools, urlTls);
  }

  private newPool(host: Host, pools: Map<string, EndpointPool>, urlTls: boolean): EndpointPool {
    const failure = tlsFailure(this.tls);
    if (failure) throw failure;
    const { address, port } = host.endpoint;
    const authority = `${address.includes(':') ? `[${address}]` : address}:${port}`;
    if (this.meshFor(host.endpoint)) {
      const meshTls = this.poolOptions.meshTls;
      if (!meshTls)
        throw meshTlsRefusal(this.mesh!, destinationText(this.name), this.deps.certificates) ?? new Error(`no mesh TLS credentials for ${this.name}`);
      const pool = this.deps.poolFactory(`https://${authority}`, host.endpoint, { ...this.poolOptions, tls: undefined });
      pools.set(host.endpoint.key, pool);
      this.meshPools.add(pool);
      return pool;
    }
    const tls = this.poolOptions.tls ?? (urlTls ? URL_TLS : undefined);
    const pool = this.deps.poolFactory(`${tls ? 'https' : 'http'}://${authority}`, host.endpoint, { ...this.poolOptions, tls, meshTls: undefined });
    pools.set(host.endpoint.key, pool);
    return pool;
  }

  /** `force`: requests still on the pools are cut instead of waited for. */
  async close(force = false): Promise<void> {
    this.outlier?.close();
    const pools = [...this.pools.values(), ...this.urlTlsPools.values()];
    this.pools.clear();
    this.urlTlsPools.clear();
    this.meshPools.clear();
    await Promise.all(pools.map((p) => (force ? p.destroy() : p.close()).catch(() => undefined)));
  }

  /** Every pool drains what it carries, then closes; new ones are made on demand. */
  private closePools(): void {
    for (const pool of this.pools.values()) void pool.close().catch(() => undefined);
    for (const pool of this.urlTlsPools.values()) void pool.close().catch(() => undefined);
    this.pools.clear();
    this.urlTlsPools.clear();
    this.meshPools.clear();
  }

  /** The mesh mTLS pools drain and close (new credentials); the others keep serving. */
  private closeMeshPools(): void {
    if (this.meshPools.size === 0) return;
    for (const [key, pool] of this.pools) {
      if (!this.meshPools.has(pool)) continue;
      this.pools.delete(key);
      void pool.close().catch(() => undefined);
    }
    this.meshPools.clear();
  }

  private readonly ejectionChanged = (host: Host, change: EjectionChange): void => {
    // `healthy` is already set; the balancer recomputes priorities, panic and its pick structures.
    this.balancer.update(this.hosts);
    this.onEjection?.(host, change);
  };

  private computePoolOptions(): PoolOptions {
    const c = this.connectionSettings;
    const endpoints = Math.max(1, this.hosts.length);
    return {
      http2: this.http2,
      // Envoy's max_connections is cluster-wide; undici limits each endpoint's Pool, so each gets
      // an equal share (rounded up: at most one connection over the limit per endpoint).
      connections: c.maxConnections === undefined ? null : Math.max(1, Math.ceil(c.maxConnections / endpoints)),
      connectTimeoutMs: c.connectTimeoutMs,
      keepAliveTimeoutMs: c.idleTimeoutMs,
      maxRequestsPerConnection: c.maxRequestsPerConnection,
      maxConcurrentStreams: c.maxConcurrentStreams,
      maxConnectionDurationMs: c.maxConnectionDurationMs,
      keepAliveDelayMs: c.keepAliveDelayMs,
      keepAliveIntervalMs: c.keepAliveIntervalMs,
      keepAliveProbes: c.keepAliveProbes,
      h2PingIntervalMs: c.h2PingIntervalMs,
      h2PingTimeoutMs: c.h2PingTimeoutMs,
      tls: this.tls?.kind === 'originate' ? this.tls : undefined,
      meshTls: this.meshCredentials(),
    };
  }

  /** The credentials new mesh connections use; kept while neither the settings nor the certificate changed. */
  private meshCredentials(): MeshTlsCredentials | undefined {
    const mesh = this.mesh;
    const bundle = mesh && this.deps.certificates?.current;
    if (!mesh || !bundle) return undefined;
    const current = this.poolOptions?.meshTls;
    if (current && current.tls.id === mesh.id && current.bundle === bundle) return current;
    return meshTlsCredentials(mesh, bundle);
  }

  /** New pool options: later connections use them; existing pools drain and close. */
  private refreshPools(): void {
    const next = this.computePoolOptions();
    if (samePoolOptions(next, this.poolOptions)) return;
    const meshOnly = samePoolOptions({ ...next, meshTls: undefined }, { ...this.poolOptions, meshTls: undefined });
    this.poolOptions = next;
    // New mesh credentials (a rotation) replace the mesh pools only.
    if (meshOnly) this.closeMeshPools();
    else this.closePools();
  }
}
