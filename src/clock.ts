/**
 * Time and randomness come from here so balancers, outlier detection, retries, rate limits and
 * every background timer can be driven deterministically in tests (and under a user's fake timers).
 */

/**
 * Whether a timer keeps the process alive. `request`: it belongs to a request in flight (a fault
 * delay, a back-off, a timeout), which keeps the process alive until it settles, as its socket
 * would. `background`: housekeeping (outlier checks, refreshes, re-watches, polls), which never does.
 */
export type TimerKind = 'request' | 'background';

/** Cancels a scheduled task if it has not run yet; calling it again does nothing. */
export type CancelTimer = () => void;

/**
 * The mesh's time source (`createMesh({ clock })`). Every timer the mesh sets and every time it
 * reads goes through it, so a test (or a user under fake timers) can move time instead of waiting.
 */
export interface Clock {
  /** Monotonic milliseconds (fractional): durations, ejections, token buckets, deadlines of timers. */
  now(): number;
  /**
   * Wall-clock milliseconds since the epoch: certificate validity and expiry, timestamps shown in
   * `mesh.inspect()`. Optional: default `Date.now()`.
   */
  wallNow?(): number;
  /**
   * Runs `task` once after `delayMs` (of {@link Clock.now}'s time) and returns a function that
   * cancels it. `kind` says whether the timer must keep the process alive (see {@link TimerKind}).
   * Optional: without it the mesh sets `setTimeout` timers itself (unref'd unless `request`).
   */
  schedule?(delayMs: number, task: () => void, kind: TimerKind): CancelTimer;
}

/** A {@link Clock} with every member: what the mesh's components are given. */
export interface MeshClock extends Clock {
  wallNow(): number;
  schedule(delayMs: number, task: () => void, kind: TimerKind): CancelTimer;
}

/** Uniform random in [0, 1). */
export type RandomSource = () => number;

// setTimeout fires at once for delays above 2^31 - 1 ms: longer ones are taken in steps.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * `setTimeout`, unref'd unless the timer is a request's. The globals are looked up at each call,
 * so fake timers installed after the mesh was created (vitest, sinon) still drive it.
 */
function systemSchedule(delayMs: number, task: () => void, kind: TimerKind): CancelTimer {
  // `> 0` also turns NaN into 0.
  const ms = delayMs > 0 ? delayMs : 0;
  if (ms > MAX_TIMER_MS) return scheduleInSteps(ms, task, kind);
  const timer = setTimeout(task, ms);
  if (kind !== 'request') timer.unref();
  return () => clearTimeout(timer);
}

function scheduleInSteps(delayMs: number, task: () => void, kind: TimerKind): CancelTimer {
  let cancel: CancelTimer;
  const step = (left: number): void => {
    cancel = left > MAX_TIMER_MS ? systemSchedule(MAX_TIMER_MS, () => step(left - MAX_TIMER_MS), kind) : systemSchedule(left, task, kind);
  };
  step(delayMs);
  return () => cancel();
}

/** The one implementation of system time: `performance.now`, `Date.now` and `setTimeout`. */
export const systemClock: MeshClock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  schedule: systemSchedule,
};

/**
 * The complete clock for a user's partial one: missing members come from {@link systemClock}.
 * Resolved once, when the mesh is created, so no component tests for optional members.
 */
export function meshClock(clock: Clock | undefined): MeshClock {
  if (clock === undefined) return systemClock;
  if (clock.wallNow && clock.schedule) return clock as MeshClock;
  const given = clock;
  return {
    now: () => given.now(),
    wallNow: given.wallNow ? () => given.wallNow!() : systemClock.wallNow,
    schedule: given.schedule ? (delayMs, task, kind) => given.schedule!(delayMs, task, kind) : systemSchedule,
  };
}

/**
 * Runs `task` every `periodMs` (at least 1 ms) until cancelled: the next run is set before the
 * task runs, so a task that throws does not stop it, as with `setInterval`.
 */
export function repeat(clock: MeshClock, periodMs: number, task: () => void, kind: TimerKind = 'background'): CancelTimer {
  const period = Math.max(1, periodMs);
  let stopped = false;
  let cancel: CancelTimer;
  const run = (): void => {
    if (stopped) return;
    cancel = clock.schedule(period, run, kind);
    task();
  };
  cancel = clock.schedule(period, run, kind);
  return () => {
    stopped = true;
    cancel();
  };
}

/**
 * A promise that resolves after `delayMs` on `clock`, or at once when `wake` is called (a close
 * that should not wait out a back-off). Background: a pause never keeps the process alive.
 */
export function pause(clock: MeshClock, delayMs: number): { readonly done: Promise<void>; readonly wake: () => void } {
  let wake!: () => void;
  const done = new Promise<void>((resolve) => {
    const cancel = clock.schedule(delayMs, resolve, 'background');
    wake = () => {
      cancel();
      resolve();
    };
  });
  return { done, wake };
}

export const systemRandom: RandomSource = Math.random;

/** A deterministic PRNG (mulberry32) for tests and reproducible benchmarks. */
export function seededRandom(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
