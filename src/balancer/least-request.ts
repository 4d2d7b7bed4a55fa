import { BalancerConfigError, BaseBalancer, randomIndex, type BalancerDeps, type PickContext } from './balancer.js';
import { EdfScheduler } from './edf.js';
import { hostWeight, type Host } from './host.js';
import { allWeightsEqual } from './round-robin.js';
import { SlowStart, type SlowStartOptions } from './slow-start.js';

/** Options of LEAST_REQUEST (Istio exposes only the policy; the tuning fields are Envoy's). */
export interface LeastRequestOptions {
  /**
   * Hosts sampled per pick when all weights are equal; the one with the fewest active requests
   * wins. Envoy `choice_count`, default 2 (power of two choices); must be >= 2.
   */
  readonly choiceCount?: number;
  /**
   * With unequal weights, effective weight = `weight / (active + 1) ^ activeRequestBias`. Envoy
   * `active_request_bias`, default 1.0; 0 turns the policy into weighted round robin.
   */
  readonly activeRequestBias?: number;
  /** Warmup of new hosts; off by default, as Istio's `warmup` and Envoy's `slow_start_config`. */
  readonly slowStart?: SlowStartOptions;
}

/** Envoy's `choice_count` default. */
export const DEFAULT_CHOICE_COUNT = 2;

/**
 * LEAST_REQUEST as Envoy's: with equal weights and no host warming up, sample `choiceCount` hosts
 * at random (with replacement, keeping the earlier sample on ties) and take the one with the
 * fewest active requests, which never sends a new request to the busiest host. Otherwise the
 * EDF scheduler runs with each host's weight divided by `(active + 1) ^ activeRequestBias` (and
 * scaled by slow start), evaluated each time the host is re-scheduled.
 */
export class LeastRequestBalancer extends BaseBalancer {
  private hosts: readonly Host[] = [];
  private useEdf = false;
  private readonly edf = new EdfScheduler();
  private readonly choiceCount: number;
  private readonly bias: number;
  private readonly slowStart: SlowStart | undefined;
  private replanAt = 0;
  private now = 0;
  private readonly edfWeight = (index: number): number => {
    const host = this.hosts[index]!;
    let w = hostWeight(host);
    const bias = this.bias;
    if (bias === 1) w /= host.active + 1;
    else if (bias !== 0) w /= Math.pow(host.active + 1, bias);
    return this.slowStart === undefined ? w : w * this.slowStart.factor(host, this.now);
  };

  constructor(
    options: LeastRequestOptions,
    private readonly deps: BalancerDeps,
  ) {
    super();
    const choiceCount = options.choiceCount ?? DEFAULT_CHOICE_COUNT;
    if (!Number.isInteger(choiceCount) || choiceCount < 2) {
      throw new BalancerConfigError(`least request choiceCount must be an integer >= 2, got ${choiceCount}`);
    }
    const bias = options.activeRequestBias ?? 1;
    if (!(bias >= 0) || !Number.isFinite(bias)) {
      throw new BalancerConfigError(`least request activeRequestBias must be >= 0, got ${bias}`);
    }
    this.choiceCount = choiceCount;
    this.bias = bias;
    this.slowStart = options.slowStart ? new SlowStart(options.slowStart) : undefined;
  }

  update(hosts: readonly Host[]): void {
    this.hosts = hosts.slice();
    this.plan();
  }

  protected choose(_ctx: PickContext, _attempt: number): Host | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    if (n === 0) return undefined;
    if (this.replanAt !== 0 && this.deps.clock.now() >= this.replanAt) this.plan();
    if (this.useEdf) {
      this.now = this.deps.clock.now();
      return hosts[this.edf.pickAndAdd(this.edfWeight)];
    }
    const random = this.deps.random;
    let best = hosts[randomIndex(random, n)]!;
    for (let c = 1; c < this.choiceCount; c++) {
      const sampled = hosts[randomIndex(random, n)]!;
      if (sampled.active < best.active) best = sampled;
    }
    return best;
  }

  private plan(): void {
    const hosts = this.hosts;
    this.replanAt = 0;
    if (this.slowStart !== undefined) {
      this.now = this.deps.clock.now();
      this.replanAt = this.slowStart.latestEnd(hosts, this.now);
    }
    this.useEdf = this.replanAt !== 0 || !allWeightsEqual(hosts);
    if (!this.useEdf) return;
    this.edf.reset(hosts.length);
    for (let i = 0; i < hosts.length; i++) this.edf.add(i, this.edfWeight(i));
  }
}
