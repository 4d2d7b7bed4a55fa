import { Pool } from 'undici';
import type { Host, PriorityBalancer } from '../balancer/index.js';
import { createClusterBalancer, createHost, NO_PICK_CONTEXT } from '../balancer/index.js';
import type { Clock, RandomSource } from '../clock.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { CompiledLoadBalancing, HashOn } from './balancer-spec.js';
import type { ConnectionLimits } from '../resilience/connection-limits.js';
import { UNLIMITED } from '../resilience/connection-limits.js';
import type { AttemptOutcome } from '../resilience/outcome.js';

/** How the cluster's policy wants its endpoints spoken to. */
export interface PoolOptions {
  /** HTTP/2: prior knowledge (h2c) over cleartext, ALPN `h2` over TLS. Otherwise HTTP/1.1 only. */
  readonly http2: boolean;
}

/** Per-cluster transport hook: the security issue fills TLS options here. */
export interface PoolFactory {
  (origin: string, endpoint: Endpoint, options: PoolOptions): Pool;
}

export const defaultPoolFactory: PoolFactory = (origin, _endpoint, options) =>
  new Pool(origin, {
    connections: null,
    pipelining: 1,
    keepAliveTimeout: 4_000,
    // undici would offer h2 by ALPN to any TLS endpoint; Istio speaks HTTP/1.1 unless told otherwise.
    ...(options.http2 ? { allowH2: true, useH2c: origin.startsWith('http:') } : { allowH2: false }),
  });

/**
 * The running side of one destination (service host, subset, port): its hosts with their live
 * state, its balancer, and one connection pool per endpoint, created on first use and closed when
 * the endpoint leaves.
 */
export class Cluster {
  private hosts: Host[] = [];
  private byKey = new Map<string, Host>();
  private readonly pools = new Map<string, Pool>();
  private balancer: PriorityBalancer;
  hashOn: HashOn | undefined;
  passthrough: boolean;
  /** Hedging delay (ms) for idempotent requests; 0 when off. */
  hedgeAfterMs: number;
  private poolOptions: PoolOptions;
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

  constructor(
    readonly name: string,
    lb: CompiledLoadBalancing,
    private readonly deps: { clock: Clock; random: RandomSource; poolFactory: PoolFactory },
  ) {
    this.balancer = createClusterBalancer(lb.spec, deps);
    this.hashOn = lb.hashOn;
    this.passthrough = lb.passthrough;
    this.hedgeAfterMs = lb.hedgeAfterMs;
    this.poolOptions = { http2: lb.http2 };
  }

  /** Replaces the balancing policy (a new snapshot changed it); host state is kept. */
  setLoadBalancing(lb: CompiledLoadBalancing): void {
    this.balancer = createClusterBalancer(lb.spec, this.deps);
    this.hashOn = lb.hashOn;
    this.passthrough = lb.passthrough;
    this.hedgeAfterMs = lb.hedgeAfterMs;
    if (lb.http2 !== this.poolOptions.http2) {
      // The protocol changed: new connections speak the new one; in-flight requests finish.
      this.poolOptions = { http2: lb.http2 };
      for (const pool of this.pools.values()) void pool.close().catch(() => undefined);
      this.pools.clear();
    }
    this.balancer.update(this.hosts);
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
        if (existing.endpoint.address !== endpoint.address || existing.endpoint.port !== endpoint.port) moved.push(endpoint.key);
        if (existing.endpoint !== endpoint) (existing as { endpoint: Endpoint }).endpoint = endpoint;
        host = existing;
      } else {
        host = createHost(endpoint, now);
      }
      host.healthy = endpoint.ready;
      next.set(endpoint.key, host);
    }
    for (const [key, pool] of this.pools) {
      // A logical DNS endpoint keeps its key while its address follows the answer: new requests
      // connect to the new address, the old connections finish what they carry.
      if (!next.has(key) || moved.includes(key)) {
        this.pools.delete(key);
        // Let in-flight requests finish; new ones go elsewhere.
        void pool.close().catch(() => undefined);
      }
    }
    this.byKey = next;
    this.hosts = [...next.values()];
    this.balancer.update(this.hosts);
  }

  get size(): number {
    return this.hosts.length;
  }

  /** A host for the next attempt; `exclude` steers retries away from hosts already tried. */
  pick(hash: number | undefined, exclude?: (host: Host) => boolean): Host | undefined {
    if (exclude) return this.balancer.pick(hash === undefined ? { exclude } : { hash, exclude });
    return this.balancer.pick(hash === undefined ? NO_PICK_CONTEXT : { hash });
  }

  /** How an attempt to `host` ended: fed to outlier detection. */
  report(_host: Host, _outcome: AttemptOutcome): void {
    // Outlier detection arrives here.
  }

  pool(host: Host): Pool {
    const key = host.endpoint.key;
    let pool = this.pools.get(key);
    if (!pool) {
      const { address, port } = host.endpoint;
      const origin = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
      pool = this.deps.poolFactory(origin, host.endpoint, this.poolOptions);
      this.pools.set(key, pool);
    }
    return pool;
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.close().catch(() => undefined)));
  }
}


