import { BalancerConfigError, BaseBalancer, randomIndex, type BalancerDeps, type PickContext } from './balancer.js';
import { DEFAULT_PEAK_EWMA_TAU_MS, hostWeight, type Host } from './host.js';

/**
 * Options of PEAK_EWMA, our addition beyond Istio (Finagle's and Linkerd's latency-aware
 * balancer); the names are ours, the defaults theirs.
 */
export interface PeakEwmaOptions {
  /**
   * Time constant of the latency estimate's decay, in ms. Finagle `decayTime` and Linkerd's
   * `decay`, default 10 s.
   */
  readonly decayMs?: number;
  /** Distinct hosts compared per pick; default 2 (power of two choices), as Finagle and Linkerd. */
  readonly choiceCount?: number;
  /**
   * Latency assumed for a host never measured. Unset (the default): Finagle's rule, cost 0 while
   * the host is idle, so it is probed at once, and a prohibitive penalty while that first probe
   * is in flight, so one slow newcomer cannot swallow a burst. Set: Linkerd's rule, the host
   * costs as if it had this latency (Linkerd uses 30 ms).
   */
  readonly defaultRttMs?: number;
}

/** Finagle's penalty for an unmeasured host with a request in flight (`Long.MaxValue >> 16` ns). */
const UNMEASURED_PENALTY = 2 ** 47;

/**
 * PEAK_EWMA: cost = latency estimate x (active + 1) / weight, where the estimate jumps to any
 * sample above it and otherwise decays with time constant `decayMs` (see `onFinish`); the host of
 * lower cost among `choiceCount` distinct random hosts wins. Reading the estimate decays it
 * towards zero with the clock, so a host that stopped receiving traffic because it was slow is
 * tried again once its estimate has decayed below its peers', and keeps traffic if it recovered.
 *
 * Endpoint weights divide the cost (Finagle and Linkerd have no weights; dividing keeps a
 * weight-2 host as attractive as a weight-1 host at half its load).
 */
export class PeakEwmaBalancer extends BaseBalancer {
  private hosts: readonly Host[] = [];
  private readonly tauMs: number;
  private readonly choiceCount: number;
  private readonly defaultRttMs: number | undefined;

  constructor(
    options: PeakEwmaOptions,
    private readonly deps: BalancerDeps,
  ) {
    super();
    const tau = options.decayMs ?? DEFAULT_PEAK_EWMA_TAU_MS;
    if (!(tau > 0) || !Number.isFinite(tau)) {
      throw new BalancerConfigError(`peak EWMA decayMs must be a positive duration, got ${tau}`);
    }
    const choiceCount = options.choiceCount ?? 2;
    if (!Number.isInteger(choiceCount) || choiceCount < 2) {
      throw new BalancerConfigError(`peak EWMA choiceCount must be an integer >= 2, got ${choiceCount}`);
    }
    const defaultRtt = options.defaultRttMs;
    if (defaultRtt !== undefined && !(defaultRtt >= 0 && Number.isFinite(defaultRtt))) {
      throw new BalancerConfigError(`peak EWMA defaultRttMs must be >= 0, got ${defaultRtt}`);
    }
    this.tauMs = tau;
    this.choiceCount = choiceCount;
    this.defaultRttMs = defaultRtt;
  }

  update(hosts: readonly Host[]): void {
    this.hosts = hosts.slice();
    // The decay constant lives on the host so `onFinish` can apply it without a balancer at hand.
    for (const host of hosts) host.ewma.tauMs = this.tauMs;
  }

  /** The cost this balancer compares for `host` at `now` (lower is better). */
  cost(host: Host, now: number): number {
    const e = host.ewma;
    let latency: number;
    if (e.samples > 0) {
      latency = e.rttMs * Math.exp(-(now - e.stampMs) / e.tauMs);
    } else if (this.defaultRttMs !== undefined) {
      latency = this.defaultRttMs;
    } else {
      return host.active === 0 ? 0 : UNMEASURED_PENALTY + host.active;
    }
    return (latency * (host.active + 1)) / hostWeight(host);
  }

  protected choose(_ctx: PickContext, _attempt: number): Host | undefined {
    const hosts = this.hosts;
    const n = hosts.length;
    if (n === 0) return undefined;
    const random = this.deps.random;
    const first = randomIndex(random, n);
    if (n === 1) return hosts[first];
    const now = this.deps.clock.now();
    let best = hosts[first]!;
    let bestCost = this.cost(best, now);
    for (let c = 1; c < this.choiceCount; c++) {
      // Distinct from the first sample: comparing a host with itself wastes the choice.
      let j = randomIndex(random, n - 1);
      if (j >= first) j++;
      const candidate = hosts[j]!;
      const cost = this.cost(candidate, now);
      if (cost < bestCost) {
        best = candidate;
        bestCost = cost;
      }
    }
    return best;
  }
}
