/** Envoy's retry budget divides `budget_interval` into ten slots and expires one at a time. */
const SLOTS = 10;

/**
 * How many requests started within the last `intervalMs`, in ten slots of a tenth of the interval
 * each (Envoy's `budget_interval` window), so a count is ten additions at most and nothing is
 * allocated per request.
 */
export class RequestWindow {
  private readonly counts = new Float64Array(SLOTS);
  /** Which slot period (time / slot length) each slot's count belongs to. */
  private readonly periods = new Float64Array(SLOTS).fill(-1);
  private readonly slotMs: number;

  constructor(readonly intervalMs: number) {
    this.slotMs = intervalMs / SLOTS;
  }

  add(now: number): void {
    const period = Math.floor(now / this.slotMs);
    const i = period % SLOTS;
    if (this.periods[i] !== period) {
      this.periods[i] = period;
      this.counts[i] = 0;
    }
    this.counts[i]!++;
  }

  count(now: number): number {
    const current = Math.floor(now / this.slotMs);
    let total = 0;
    for (let i = 0; i < SLOTS; i++) {
      const period = this.periods[i]!;
      if (period > current - SLOTS && period <= current) total += this.counts[i]!;
    }
    return total;
  }
}
