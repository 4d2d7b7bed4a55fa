import type { Clock } from '../../src/clock.js';
import { scheduleOn, systemClock } from '../../src/clock.js';

/**
 * A clock that holds back the timers of one delay (the timeout a test is about) until the test
 * fires them, and runs every other timer (retry back-off, ...) on real time. A test fires the
 * timeout when the pod has the request, so "the timeout passed" is an event, not a wait.
 */
export class HeldTimeoutClock implements Clock {
  private held: { readonly run: () => void; cancelled: boolean }[] = [];
  /** Timers fired so far. */
  fired = 0;

  constructor(readonly heldDelayMs: number) {}

  now(): number {
    return systemClock.now();
  }

  schedule(delayMs: number, task: () => void): () => void {
    if (delayMs !== this.heldDelayMs) return scheduleOn(systemClock, delayMs, task);
    const entry = { run: task, cancelled: false };
    this.held.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  /** Runs every held timer not cancelled yet; returns how many ran. */
  fireHeld(): number {
    const due = this.held.filter((t) => !t.cancelled);
    this.held = [];
    for (const t of due) {
      t.cancelled = true;
      this.fired++;
      t.run();
    }
    return due.length;
  }
}
