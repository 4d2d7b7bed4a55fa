/**
 * Time and randomness come from here so balancers, outlier detection, retries and rate limits can
 * be driven deterministically in tests (and under a user's fake timers).
 */
export interface Clock {
  /** Monotonic milliseconds (fractional). */
  now(): number;
  /**
   * Runs `task` after `delayMs` and returns a function that cancels it. Optional: without it the
   * mesh uses `setTimeout`. The data path schedules fault delays, back-offs, hedges and timeouts
   * here, so tests (and users under fake timers) can fire them on demand.
   */
  schedule?(delayMs: number, task: () => void): () => void;
}

/** Uniform random in [0, 1). */
export type RandomSource = () => number;

export const systemClock: Clock = { now: () => performance.now() };

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

// setTimeout fires at once for delays above 2^31 - 1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `task` after `delayMs` on the clock's own scheduler when it has one (tests and fake timers
 * drive it), else on a `setTimeout`. `keepAlive`: the timer belongs to a request in flight (a
 * fault delay, a back-off, a timeout), which keeps the process alive until it settles, as a
 * socket would; otherwise (background work: outlier detection, refreshes) it is unref'd and never
 * does. Returns a function that cancels the task if it has not run.
 */
export function scheduleOn(clock: Clock, delayMs: number, task: () => void, keepAlive = false): () => void {
  if (clock.schedule) return clock.schedule(delayMs, task);
  const timer = setTimeout(task, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
  if (!keepAlive) timer.unref();
  return () => clearTimeout(timer);
}
