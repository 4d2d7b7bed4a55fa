import type { Clock } from '../../src/clock.js';
import { systemClock } from '../../src/clock.js';

/**
 * A clock whose timers the test fires: every scheduled task is recorded with its delay and runs
 * only when released (or at once in `immediate` mode). No test here waits on real time.
 */
export class TestClock implements Clock {
  readonly tasks: { readonly delayMs: number; readonly run: () => void; cancelled: boolean }[] = [];
  immediate = false;
  private waiters: { readonly test: (delayMs: number) => boolean; readonly resolve: () => void }[] = [];
  /** Resolves once a task whose delay passes `test` is waiting (now or when scheduled). */
  until(test: (delayMs: number) => boolean = () => true): Promise<void> {
    if (this.waiting.some((t) => test(t.delayMs))) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ test, resolve }));
  }
  now(): number {
    return systemClock.now();
  }
  schedule(delayMs: number, task: () => void): () => void {
    const entry = { delayMs, run: task, cancelled: false };
    this.tasks.push(entry);
    this.waiters = this.waiters.filter((w) => {
      if (!w.test(delayMs)) return true;
      w.resolve();
      return false;
    });
    if (this.immediate) queueMicrotask(() => this.fire(entry));
    return () => {
      entry.cancelled = true;
    };
  }
  fire(entry: TestClock['tasks'][number]): void {
    if (entry.cancelled) return;
    entry.cancelled = true;
    entry.run();
  }
  pending(delayMs: number): TestClock['tasks'] {
    return this.tasks.filter((t) => t.delayMs === delayMs && !t.cancelled);
  }
  /** Every task not yet run or cancelled. */
  get waiting(): TestClock['tasks'] {
    return this.tasks.filter((t) => !t.cancelled);
  }
  /** Runs every task waiting now (not those they schedule); returns how many ran. */
  fireAll(filter: (delayMs: number) => boolean = () => true): number {
    const due = this.waiting.filter((t) => filter(t.delayMs));
    for (const t of due) this.fire(t);
    return due.length;
  }
  count(delayMs: number): number {
    return this.tasks.filter((t) => t.delayMs === delayMs).length;
  }
}
