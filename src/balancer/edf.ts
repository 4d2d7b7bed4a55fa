/**
 * Earliest-deadline-first scheduler over host indices, as Envoy's `EdfScheduler`: each entry's
 * deadline is `now + 1 / weight`; the earliest is picked, `now` moves to its deadline, and the
 * entry is re-added with the weight it has *at that moment*. That last step is what lets weights
 * change between picks (least-request's active-request bias, slow start) without rebuilding.
 *
 * The heap lives in typed arrays sized on `reset`, so `pickAndAdd` allocates nothing. Ties go to
 * the entry added first, so the order is deterministic. EDF is proportional but not smooth (5:1:1
 * gives `a a a a a b c` bursts); static weights use the precomputed smooth schedule of
 * `round-robin.ts` instead.
 */
export class EdfScheduler {
  private deadline = new Float64Array(0);
  private order = new Float64Array(0);
  private item = new Int32Array(0);
  private size = 0;
  private now = 0;
  private sequence = 0;

  /** Empties the scheduler and makes room for `capacity` entries. */
  reset(capacity: number): void {
    if (this.item.length < capacity) {
      this.deadline = new Float64Array(capacity);
      this.order = new Float64Array(capacity);
      this.item = new Int32Array(capacity);
    }
    this.size = 0;
    this.now = 0;
    this.sequence = 0;
  }

  /** Adds `index` with `weight` (> 0). */
  add(index: number, weight: number): void {
    let i = this.size++;
    const d = this.now + 1 / weight;
    const o = this.sequence++;
    // Sift up.
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(d, o, parent)) break;
      this.move(parent, i);
      i = parent;
    }
    this.deadline[i] = d;
    this.order[i] = o;
    this.item[i] = index;
  }

  /** Index with the earliest deadline, without removing it; -1 when empty. */
  peek(): number {
    return this.size > 0 ? this.item[0]! : -1;
  }

  /**
   * Picks the earliest entry and re-adds it with `weightOf(index)` evaluated now.
   * Returns -1 when empty.
   */
  pickAndAdd(weightOf: (index: number) => number): number {
    if (this.size === 0) return -1;
    const index = this.item[0]!;
    this.now = this.deadline[0]!;
    const w = weightOf(index);
    const d = this.now + 1 / (w > 0 ? w : Number.MIN_VALUE);
    const o = this.sequence++;
    // Replace the root and sift down.
    let i = 0;
    const n = this.size;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.lessAt(r, l) ? r : l;
      if (!this.after(d, o, c)) break;
      this.move(c, i);
      i = c;
    }
    this.deadline[i] = d;
    this.order[i] = o;
    this.item[i] = index;
    return index;
  }

  get length(): number {
    return this.size;
  }

  private before(d: number, o: number, at: number): boolean {
    const da = this.deadline[at]!;
    return d < da || (d === da && o < this.order[at]!);
  }

  private after(d: number, o: number, at: number): boolean {
    const da = this.deadline[at]!;
    return d > da || (d === da && o > this.order[at]!);
  }

  private lessAt(a: number, b: number): boolean {
    const da = this.deadline[a]!;
    const db = this.deadline[b]!;
    return da < db || (da === db && this.order[a]! < this.order[b]!);
  }

  private move(from: number, to: number): void {
    this.deadline[to] = this.deadline[from]!;
    this.order[to] = this.order[from]!;
    this.item[to] = this.item[from]!;
  }
}
