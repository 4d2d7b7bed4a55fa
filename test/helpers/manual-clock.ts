import type { Clock } from '../../src/clock.js';

interface Task {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
  cancelled: boolean;
}

/**
 * A clock that only moves when the test says so: `now()` is virtual and scheduled tasks run,
 * in time order, as `advance` passes their due time. Nothing waits on real time.
 */
export class ManualClock implements Clock {
  private time = 1_000;
  private seq = 0;
  private tasks: Task[] = [];

  now(): number {
    return this.time;
  }

  schedule(delayMs: number, task: () => void): () => void {
    const entry: Task = { at: this.time + Math.max(0, delayMs), seq: this.seq++, run: task, cancelled: false };
    this.tasks.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  /** Moves time forward by `ms`, running every task that falls due on the way. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.tasks
        .filter((t) => !t.cancelled && t.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      due.cancelled = true;
      this.time = Math.max(this.time, due.at);
      due.run();
    }
    this.time = end;
    this.tasks = this.tasks.filter((t) => !t.cancelled);
  }

  /** Tasks waiting to run. */
  get pending(): number {
    return this.tasks.filter((t) => !t.cancelled).length;
  }

  /** How far `advance` must go to run the next task (and only it, unless others fall due with it). */
  untilNext(): number | undefined {
    const due = this.tasks.filter((t) => !t.cancelled).map((t) => t.at);
    return due.length > 0 ? Math.max(0, Math.min(...due) - this.time) : undefined;
  }
}
