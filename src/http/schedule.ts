import type { Clock } from '../clock.js';

// setTimeout fires at once for delays above 2^31 - 1 ms.
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Runs `task` after `delayMs` on the mesh's clock when it schedules (tests drive fault delays
 * and route timeouts this way), else on an unref'd `setTimeout`, so a pending timer never keeps
 * the process alive. Returns a function that cancels the task if it has not run.
 */
export function schedule(clock: Clock, delayMs: number, task: () => void): () => void {
  if (clock.schedule) return clock.schedule(delayMs, task);
  const timer = setTimeout(task, Math.min(Math.max(0, delayMs), MAX_DELAY_MS));
  timer.unref();
  return () => clearTimeout(timer);
}
