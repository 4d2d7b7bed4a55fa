/**
 * A cache by object identity for results that are worked out again in every pass over the
 * configuration: it keeps what the last completed pass touched, and what was added since. A
 * `WeakMap` would need no bookkeeping, but each of its entries is an ephemeron, which the garbage
 * collector works through in the pause that ends a major collection; tens of thousands of them
 * (one per resource, in several caches, one leading to the next) made those pauses much longer.
 */
export class RecentCache<K, V> {
  private previous = new Map<K, V>();
  private current = new Map<K, V>();

  get(key: K): V | undefined {
    const hit = this.current.get(key);
    if (hit !== undefined) return hit;
    const kept = this.previous.get(key);
    if (kept !== undefined) this.current.set(key, kept);
    return kept;
  }

  has(key: K): boolean {
    return this.current.has(key) || this.previous.has(key);
  }

  set(key: K, value: V): void {
    this.current.set(key, value);
  }

  /** A pass over everything completed: entries it did not touch are let go. */
  passed(): void {
    this.previous = this.current;
    this.current = new Map();
  }
}
