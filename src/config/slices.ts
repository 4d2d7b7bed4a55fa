/**
 * Long configuration work (parsing a large file, validating and compiling thousands of resources)
 * is written as a generator that yields between units of work. `runInSlices` runs it on the event
 * loop a few milliseconds at a time, so requests keep being served while it runs; `runToEnd` runs
 * it at once where nothing else waits (a CLI check, a small input).
 */
export type Steps<T> = Generator<void, T, void>;

/** How long one slice may hold the event loop before it yields, in ms. */
export const DEFAULT_SLICE_MS = 8;

/** Returned by {@link runInSlices} when `stop` asked it to give up. */
export const STOPPED: unique symbol = Symbol('stopped');

export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/**
 * Runs `steps` in slices of about `sliceMs` (0: one step per slice), yielding to the event loop
 * between them (`setImmediate`: pending I/O and timers run first). Between slices `stop` is asked
 * whether the work is still wanted; if not, the generator is closed and {@link STOPPED} returned.
 */
export async function runInSlices<T>(steps: Steps<T>, options: { readonly sliceMs?: number; readonly stop?: () => boolean } = {}): Promise<T | typeof STOPPED> {
  const sliceMs = options.sliceMs ?? DEFAULT_SLICE_MS;
  for (;;) {
    const deadline = performance.now() + sliceMs;
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
      if (performance.now() >= deadline) break;
    }
    await nextTurn();
    if (options.stop?.()) {
      steps.return(undefined as never);
      return STOPPED;
    }
  }
}

/** Resolves on a later turn of the event loop, after pending I/O callbacks have run. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** For loops of cheap steps: true once every `n` calls, where a `yield` is worth its cost. */
export function every(n: number): () => boolean {
  let count = 0;
  return () => ++count % n === 0;
}
