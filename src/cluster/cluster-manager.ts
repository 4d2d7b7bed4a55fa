import type { Clock, RandomSource } from '../clock.js';
import { mergeTrafficPolicy } from '../config/compile/traffic-policy.js';
import type { Snapshot } from '../config/snapshot.js';
import type { Endpoint } from '../discovery/endpoint.js';
import { labelsMatch } from '../discovery/endpoint.js';
import type { CallerIdentity } from './balancer-spec.js';
import { compileLoadBalancing } from './balancer-spec.js';
import type { PoolFactory } from './cluster.js';
import { Cluster, defaultPoolFactory } from './cluster.js';

export interface ClusterManagerDeps {
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly caller: CallerIdentity;
  readonly poolFactory?: PoolFactory;
}

/**
 * Clusters are made on first use of a (host, subset, port) and kept in step with every new
 * snapshot: endpoints, subset labels and the merged policy are re-read; hosts that stay keep
 * their state; a destination that no longer resolves to anything is closed.
 */
export class ClusterManager {
  private readonly clusters = new Map<string, Cluster>();
  private snapshot: Snapshot | undefined;

  constructor(private readonly deps: ClusterManagerDeps) {}

  setSnapshot(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    for (const [key, cluster] of this.clusters) {
      const [host, subset, port] = splitKey(key);
      const endpoints = this.endpointsFor(snapshot, host, subset, port);
      if (endpoints === undefined) {
        this.clusters.delete(key);
        void cluster.close();
        continue;
      }
      cluster.setLoadBalancing(this.loadBalancing(snapshot, host, subset, port));
      cluster.setEndpoints(endpoints, false);
    }
  }

  /**
   * The cluster for a destination, or undefined when the configuration knows no endpoints for it
   * (the caller then passes the request through to the address as asked).
   */
  get(host: string, subset: string | undefined, port: number): Cluster | undefined {
    const key = `${host}|${subset ?? ''}|${port}`;
    let cluster = this.clusters.get(key);
    if (cluster) return cluster;
    const snapshot = this.snapshot;
    if (!snapshot) return undefined;
    const endpoints = this.endpointsFor(snapshot, host, subset, port);
    if (endpoints === undefined) return undefined;
    cluster = new Cluster(key, this.loadBalancing(snapshot, host, subset, port), {
      clock: this.deps.clock,
      random: this.deps.random,
      poolFactory: this.deps.poolFactory ?? defaultPoolFactory,
    });
    cluster.setEndpoints(endpoints, true);
    this.clusters.set(key, cluster);
    return cluster;
  }

  async close(): Promise<void> {
    const all = [...this.clusters.values()];
    this.clusters.clear();
    await Promise.all(all.map((c) => c.close()));
  }

  private loadBalancing(snapshot: Snapshot, host: string, subset: string | undefined, port: number) {
    const rule = snapshot.destinationRule(host);
    const subsetDef = subset ? rule?.subsets.get(subset) : undefined;
    const policy = mergeTrafficPolicy(rule?.trafficPolicy, subsetDef?.trafficPolicy, port);
    return compileLoadBalancing(policy, rule?.annotations ?? {}, this.deps.caller);
  }

  /** Endpoints of a destination from the service registry; undefined when it has none there. */
  private endpointsFor(snapshot: Snapshot, host: string, subset: string | undefined, port: number): readonly Endpoint[] | undefined {
    const service = snapshot.service(host);
    if (!service || service.resolution === 'NONE') return undefined;
    const servicePort = service.ports.find((p) => p.number === port) ?? (service.ports.length === 1 ? service.ports[0] : undefined);
    if (!servicePort || servicePort.endpoints.length === 0) return undefined;
    if (!subset) return servicePort.endpoints;
    const def = snapshot.destinationRule(host)?.subsets.get(subset);
    // A subset no rule defines has no endpoints: Istio answers 503 (no cluster).
    return def ? servicePort.endpoints.filter((e) => labelsMatch(def.labels, e.labels)) : [];
  }
}

function splitKey(key: string): [string, string | undefined, number] {
  const [host = '', subset = '', port = '0'] = key.split('|');
  return [host, subset === '' ? undefined : subset, Number(port)];
}
