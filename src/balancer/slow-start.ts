import { BalancerConfigError } from './balancer.js';
import type { Host } from './host.js';

/**
 * Slow start (Istio `trafficPolicy.loadBalancer.warmup` and the deprecated `warmupDurationSecs`;
 * Envoy `slow_start_config`). Istio supports it for ROUND_ROBIN and LEAST_REQUEST only, and so do
 * we: those policies take it as an option.
 */
export interface SlowStartOptions {
  /**
   * Warmup window in ms, counted from `Host.addedAt`. Istio `warmup.duration` (or
   * `warmupDurationSecs`); Envoy `slow_start_window`. Required, > 0.
   */
  readonly windowMs: number;
  /**
   * Speed of the ramp: weight scales with `timeFactor ^ (1 / aggression)`. Istio
   * `warmup.aggression`; Envoy `aggression`, default 1.0 (linear). Like Envoy, a value <= 0 (or
   * NaN) falls back to 1.0.
   */
  readonly aggression?: number;
  /**
   * Floor of the scaled weight as a percentage of the endpoint's weight. Istio
   * `warmup.minimumPercent`; Envoy `min_weight_percent`, default 10.
   */
  readonly minWeightPercent?: number;
}

/** Envoy's `min_weight_percent` default. */
export const DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT = 10;

/**
 * The weight modifier: Envoy's
 * `weight * max(minWeightPercent, (max(elapsed, 1 ms) / window) ^ (1 / aggression))`
 * while the host is inside its window, `weight` afterwards.
 */
export class SlowStart {
  readonly windowMs: number;
  private readonly inverseAggression: number;
  private readonly minFactor: number;

  constructor(options: SlowStartOptions) {
    const { windowMs } = options;
    if (!(windowMs > 0) || !Number.isFinite(windowMs)) {
      throw new BalancerConfigError(`slow start window must be a positive duration, got ${windowMs} ms`);
    }
    const min = options.minWeightPercent ?? DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT;
    if (!(min >= 0 && min <= 100)) {
      throw new BalancerConfigError(`slow start minimum weight percent must be within [0, 100], got ${min}`);
    }
    const aggression = options.aggression ?? 1;
    this.windowMs = windowMs;
    this.inverseAggression = aggression > 0 ? 1 / aggression : 1;
    this.minFactor = min / 100;
  }

  /** Clock time at which `host` leaves slow start. */
  endsAt(host: Host): number {
    return host.addedAt + this.windowMs;
  }

  /** Multiplier in (0, 1] for `host`'s weight at `now`. */
  factor(host: Host, now: number): number {
    const elapsed = now - host.addedAt;
    if (elapsed >= this.windowMs) return 1;
    const time = (elapsed > 1 ? elapsed : 1) / this.windowMs;
    const scaled = this.inverseAggression === 1 ? time : Math.pow(time, this.inverseAggression);
    return scaled > this.minFactor ? scaled : this.minFactor;
  }

  /**
   * The latest end of a window among `hosts` if any host is still warming up at `now`, else 0.
   * Balancers re-plan at that time, when every host has reached full weight.
   */
  latestEnd(hosts: readonly Host[], now: number): number {
    let latest = 0;
    for (const host of hosts) {
      const end = this.endsAt(host);
      if (end > now && end > latest) latest = end;
    }
    return latest;
  }
}
