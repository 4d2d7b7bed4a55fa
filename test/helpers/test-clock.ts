import type { CancelTimer, MeshClock, TimerKind } from '../../src/clock.js';

/** A timer set on a {@link TestClock}. */
export interface TestTimer {
  /** The delay it was set with. */
  readonly delayMs: number;
  /** Clock time at which it is due. */
  readonly at: number;
  readonly kind: TimerKind;
  readonly state: 'waiting' | 'ran' | 'cancelled';
}

interface Entry extends TestTimer {
  readonly seq: number;
  readonly task: () => void;
  state: TestTimer['state'];
}

/** A request's timer (a timeout, a back-off, a fault delay), not one of the mesh's background ones. */
export const isRequestTimer = (timer: TestTimer): boolean => timer.kind === 'request';

export interface TestClockOptions {
  /** Clock time at the start (ms). Default 1000. */
  readonly now?: number;
  /** Wall-clock time at the start (ms since the epoch). Default the real `Date.now()`, so certificates minted now are valid. */
  readonly wallNow?: number;
  /** See {@link TestClock.auto}. */
  readonly auto?: (timer: TestTimer) => boolean;
}

/**
 * The one test clock: virtual time that moves only when the test says (`advance`, `runNext`),
 * running the timers that fall due in time order (ties in the order they were set), timers set by
 * those timers included. Nothing waits on real time. Pass it as `createMesh({ clock })`.
 */
export class TestClock implements MeshClock {
  private time: number;
  private readonly wallStart: number;
  private readonly start: number;
  private seq = 0;
  private readonly history: Entry[] = [];
  /** Waiting timers (and some no longer waiting, dropped as they are met). */
  private live: Entry[] = [];
  /**
   * Timers that run by themselves, each on a later turn of the event loop with the clock moved to
   * its due time (never back), for timers a test is not about: a retry's back-off while it drives a
   * timeout. Undefined (the default): every timer waits for the test.
   */
  get auto(): ((timer: TestTimer) => boolean) | undefined {
    return this.autoRun;
  }

  set auto(which: ((timer: TestTimer) => boolean) | undefined) {
    this.autoRun = which;
    if (which && this.waiting.some(which)) this.pump();
  }

  private autoRun: ((timer: TestTimer) => boolean) | undefined;
  private pumping = false;
  private waiters: { readonly which: (timer: TestTimer) => boolean; readonly resolve: (timer: TestTimer) => void }[] = [];

  constructor(options: TestClockOptions = {}) {
    this.time = options.now ?? 1_000;
    this.start = this.time;
    this.wallStart = options.wallNow ?? Date.now();
    this.autoRun = options.auto;
  }

  now(): number {
    return this.time;
  }

  wallNow(): number {
    return this.wallStart + (this.time - this.start);
  }

  schedule(delayMs: number, task: () => void, kind: TimerKind = 'background'): CancelTimer {
    const delay = delayMs > 0 ? delayMs : 0;
    const entry: Entry = { delayMs, at: this.time + delay, kind, seq: this.seq++, task, state: 'waiting' };
    this.history.push(entry);
    this.live.push(entry);
    if (this.waiters.length > 0) {
      this.waiters = this.waiters.filter((w) => {
        if (!w.which(entry)) return true;
        w.resolve(entry);
        return false;
      });
    }
    if (this.autoRun?.(entry)) this.pump();
    return () => {
      if (entry.state === 'waiting') entry.state = 'cancelled';
    };
  }

  /** Every timer set so far, in the order set (run and cancelled ones included). */
  get scheduled(): readonly TestTimer[] {
    return this.history;
  }

  /** The timers waiting now, earliest due first. */
  get waiting(): readonly TestTimer[] {
    this.live = this.live.filter(isWaiting);
    return [...this.live].sort(byDue);
  }

  /**
   * Moves time forward by `ms`, running every timer due on the way in time order, those they set
   * included (the clock reads each timer's due time while it runs). Returns the timers that ran,
   * in order; the mesh's own background timers (telemetry rechecks, ...) are among them.
   */
  advance(ms: number): TestTimer[] {
    const end = this.time + Math.max(0, ms);
    const ran: TestTimer[] = [];
    for (let next = this.earliest(); next !== undefined && next.at <= end; next = this.earliest()) {
      this.run(next);
      ran.push(next);
    }
    this.time = end;
    return ran;
  }

  /**
   * Moves time to the due time of the earliest waiting timer that `which` accepts (default any),
   * running it and everything due before it, in order. Returns it, or undefined when none waits.
   */
  runNext(which: (timer: TestTimer) => boolean = () => true): TestTimer | undefined {
    const target = this.waiting.find(which);
    if (!target) return undefined;
    this.advance(target.at - this.time);
    return target;
  }

  /** Resolves with the earliest waiting timer that `which` accepts (default any), now or once it is set. */
  until(which: (timer: TestTimer) => boolean = () => true): Promise<TestTimer> {
    const found = this.waiting.find(which);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ which, resolve }));
  }

  /** Waits for a timer that `which` accepts (default any), then moves time to it as {@link runNext} does. Returns it. */
  async next(which: (timer: TestTimer) => boolean = () => true): Promise<TestTimer> {
    const timer = await this.until(which);
    this.runNext((t) => t === timer);
    return timer;
  }

  private earliest(): Entry | undefined {
    let best: Entry | undefined;
    this.live = this.live.filter(isWaiting);
    for (const e of this.live) if (best === undefined || byDue(e, best) < 0) best = e;
    return best;
  }

  private run(entry: Entry): void {
    entry.state = 'ran';
    // A timer already overdue (an auto timer moved time past it) runs at the current time.
    this.time = Math.max(this.time, entry.at);
    entry.task();
  }

  /** Runs waiting auto timers one per turn of the event loop, earliest first. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    setImmediate(() => {
      this.pumping = false;
      const auto = this.autoRun;
      const next = auto && this.waiting.find(auto);
      if (!next) return;
      this.run(next as Entry);
      if (this.waiting.some(auto)) this.pump();
    });
  }
}

const isWaiting = (e: TestTimer): boolean => e.state === 'waiting';

function byDue(a: TestTimer, b: TestTimer): number {
  return a.at - b.at || (a as Entry).seq - (b as Entry).seq;
}
