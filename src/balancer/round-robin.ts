import { BaseBalancer, randomIndex, type BalancerDeps, type PickContext } from './balancer.js';
import { EdfScheduler } from './edf.js';
import { hostWeight, type Host } from './host.js';
import { SlowStart, type SlowStartOptions } from './slow-start.js';

/** Options of ROUND_ROBIN. */
export interface RoundRobinOptions {
  /** Warmup of new hosts; off by default, as Istio's `warmup` and Envoy's `slow_start_config`. */
  readonly slowStart?: SlowStartOptions;
}

/** Largest smooth schedule precomputed (sum of reduced weights), and its build-cost cap. */
const MAX_SCHEDULE_LENGTH = 65_536;
const MAX_SCHEDULE_WORK = 1 << 22;

const Mode = {
  Empty: 0,
  /** All weights equal: plain rotation. */
  Unweighted: 1,
  /** Static integer weights: a precomputed smooth weighted round-robin cycle. */
  Schedule: 2,
  /** Weights that change over time (slow start) or do not fit a schedule: Envoy's EDF. */
  Edf: 3,
} as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/**
 * ROUND_ROBIN, weighted and smooth. Equal weights rotate through the hosts. Unequal static
 * weights follow nginx's smooth weighted round-robin, computed once per update into a cycle
 * (5:1:1 gives `a a b a c a a`, never `a a a a a b c`), so a pick is an array read. While a host
 * is in slow start, weights change with time and the pick goes through Envoy's EDF scheduler,
 * as Envoy does; the balancer re-plans when the last window ends.
 *
 * Every plan starts at a random offset (as Envoy's round robin does) so that many clients that
 * received the same endpoint update do not all hit the same host first.
 */
export class RoundRobinBalancer extends BaseBalancer {
  private hosts: readonly Host[] = [];
  private mode: Mode = Mode.Empty;
  private next = 0;
  private schedule = new Int32Array(0);
  private scheduleLength = 0;
  private readonly edf = new EdfScheduler();
  private readonly slowStart: SlowStart | undefined;
  /** Clock time at which the last host leaves slow start; 0 when none is warming up. */
  private replanAt = 0;
  private now = 0;
  private readonly edfWeight = (index: number): number => {
    const host = this.hosts[index]!;
    const w = hostWeight(host);
    return this.slowStart === undefined ? w : w * this.slowStart.factor(host, this.now);
  };

  constructor(
    options: RoundRobinOptions,
    private readonly deps: BalancerDeps,
  ) {
    super();
    this.slowStart = options.slowStart ? new SlowStart(options.slowStart) : undefined;
  }

  update(hosts: readonly Host[]): void {
    this.hosts = hosts.slice();
    this.plan();
  }

  protected choose(_ctx: PickContext, _attempt: number): Host | undefined {
    if (this.replanAt !== 0 && this.deps.clock.now() >= this.replanAt) this.plan();
    switch (this.mode) {
      case Mode.Empty:
        return undefined;
      case Mode.Unweighted: {
        const i = this.next;
        this.next = i + 1 === this.hosts.length ? 0 : i + 1;
        return this.hosts[i];
      }
      case Mode.Schedule: {
        const i = this.next;
        this.next = i + 1 === this.scheduleLength ? 0 : i + 1;
        return this.hosts[this.schedule[i]!];
      }
      case Mode.Edf:
        this.now = this.deps.clock.now();
        return this.hosts[this.edf.pickAndAdd(this.edfWeight)];
    }
  }

  private plan(): void {
    const hosts = this.hosts;
    const n = hosts.length;
    this.replanAt = 0;
    if (n === 0) {
      this.mode = Mode.Empty;
      return;
    }
    const random = this.deps.random;
    if (this.slowStart !== undefined) {
      this.now = this.deps.clock.now();
      this.replanAt = this.slowStart.latestEnd(hosts, this.now);
      if (this.replanAt !== 0) {
        this.planEdf();
        return;
      }
    }
    if (allWeightsEqual(hosts)) {
      this.mode = Mode.Unweighted;
      this.next = randomIndex(random, n);
      return;
    }
    const length = this.planSchedule();
    if (length > 0) {
      this.mode = Mode.Schedule;
      this.scheduleLength = length;
      this.next = randomIndex(random, length);
      return;
    }
    this.planEdf();
  }

  private planEdf(): void {
    this.mode = Mode.Edf;
    this.edf.reset(this.hosts.length);
    for (let i = 0; i < this.hosts.length; i++) this.edf.add(i, this.edfWeight(i));
  }

  /** Fills `schedule` with one smooth cycle; returns its length, or 0 when weights do not fit. */
  private planSchedule(): number {
    const hosts = this.hosts;
    const n = hosts.length;
    let divisor = 0;
    for (const host of hosts) {
      const w = hostWeight(host);
      if (!Number.isInteger(w)) return 0;
      divisor = gcd(divisor, w);
    }
    const weights = new Float64Array(n);
    let total = 0;
    for (let i = 0; i < n; i++) {
      weights[i] = hostWeight(hosts[i]!) / divisor;
      total += weights[i]!;
    }
    if (total > MAX_SCHEDULE_LENGTH || total * n > MAX_SCHEDULE_WORK) return 0;
    if (this.schedule.length < total) this.schedule = new Int32Array(total);
    // nginx: every host gains its weight, the richest is picked and pays the total back.
    const current = new Float64Array(n);
    for (let t = 0; t < total; t++) {
      let best = 0;
      for (let i = 0; i < n; i++) {
        current[i] = current[i]! + weights[i]!;
        if (current[i]! > current[best]!) best = i;
      }
      current[best] = current[best]! - total;
      this.schedule[t] = best;
    }
    return total;
  }
}

export function allWeightsEqual(hosts: readonly Host[]): boolean {
  if (hosts.length === 0) return true;
  const first = hostWeight(hosts[0]!);
  for (let i = 1; i < hosts.length; i++) if (hostWeight(hosts[i]!) !== first) return false;
  return true;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}
