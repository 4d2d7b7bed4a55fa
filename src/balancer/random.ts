import { BaseBalancer, randomIndex, type BalancerDeps, type PickContext } from './balancer.js';
import { hostWeight, type Host } from './host.js';
import { allWeightsEqual } from './round-robin.js';

/**
 * RANDOM, weighted: each host is chosen with probability weight / total. Cumulative weights are
 * built on update, so a weighted pick is one random number and a binary search.
 */
export class RandomBalancer extends BaseBalancer {
  private hosts: readonly Host[] = [];
  private cumulative = new Float64Array(0);
  private total = 0;
  private weighted = false;

  constructor(private readonly deps: BalancerDeps) {
    super();
  }

  update(hosts: readonly Host[]): void {
    this.hosts = hosts.slice();
    this.weighted = !allWeightsEqual(hosts);
    if (!this.weighted) return;
    if (this.cumulative.length < hosts.length) this.cumulative = new Float64Array(hosts.length);
    let total = 0;
    for (let i = 0; i < hosts.length; i++) {
      total += hostWeight(hosts[i]!);
      this.cumulative[i] = total;
    }
    this.total = total;
  }

  protected choose(_ctx: PickContext, _attempt: number): Host | undefined {
    const n = this.hosts.length;
    if (n === 0) return undefined;
    if (!this.weighted) return this.hosts[randomIndex(this.deps.random, n)];
    return this.hosts[weightedIndex(this.cumulative, n, this.deps.random() * this.total)];
  }
}

/** First index in `cumulative[0, n)` whose running total exceeds `target`. */
export function weightedIndex(cumulative: Float64Array, n: number, target: number): number {
  let lo = 0;
  let hi = n - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cumulative[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
