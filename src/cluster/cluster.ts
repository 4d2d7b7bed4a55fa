import { Pool } from 'undici';
import type { Host, PriorityBalancer } from '../balancer/index.js';
import { createClusterBalancer, createHost, NO_PICK_CONTEXT } from '../balancer/index.js';
import type { Clock, RandomSource } from '../clock.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { CompiledLoadBalancing, HashOn } from './balancer-spec.js';

/** Per-cluster transport hook: the security issue fills TLS options here. */
export interface PoolFactory {
  (origin: string, endpoint: Endpoint): Pool;
}

export const defaultPoolFactory: PoolFactory = (origin) =>
  new Pool(origin, { connections: null, pipelining: 1, keepAliveTimeout: 4_000 });

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

  constructor(
    readonly name: string,
    lb: CompiledLoadBalancing,
    private readonly deps: { clock: Clock; random: RandomSource; poolFactory: PoolFactory },
  ) {
    this.balancer = createClusterBalancer(lb.spec, deps);
    this.hashOn = lb.hashOn;
    this.passthrough = lb.passthrough;
  }

  /** Replaces the balancing policy (a new snapshot changed it); host state is kept. */
  setLoadBalancing(lb: CompiledLoadBalancing): void {
    this.balancer = createClusterBalancer(lb.spec, this.deps);
    this.hashOn = lb.hashOn;
    this.passthrough = lb.passthrough;
    this.balancer.update(this.hosts);
  }

  /** Applies a new endpoint set; hosts that stay keep their in-flight and latency state. */
  setEndpoints(endpoints: readonly Endpoint[], initial: boolean): void {
    const next = new Map<string, Host>();
    const now = initial ? -Infinity : this.deps.clock.now();
    for (const endpoint of endpoints) {
      const existing = this.byKey.get(endpoint.key);
      const host = existing && existing.endpoint === endpoint ? existing : existing ? { ...existing, endpoint } : createHost(endpoint, now);
      host.healthy = endpoint.ready;
      next.set(endpoint.key, host);
    }
    for (const [key, pool] of this.pools) {
      if (!next.has(key)) {
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

  pick(hash: number | undefined): Host | undefined {
    return this.balancer.pick(hash === undefined ? NO_PICK_CONTEXT : { hash });
  }

  pool(host: Host): Pool {
    const key = host.endpoint.key;
    let pool = this.pools.get(key);
    if (!pool) {
      const { address, port } = host.endpoint;
      const origin = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
      pool = this.deps.poolFactory(origin, host.endpoint);
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


