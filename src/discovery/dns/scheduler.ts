/**
 * Runs a task later. DNS discovery schedules its refreshes through this so tests (and users under
 * fake timers) can drive them; the returned function cancels the task if it has not run.
 */
export interface Scheduler {
  schedule(delayMs: number, task: () => void): () => void;
}

// setTimeout fires at once for delays above 2^31 - 1 ms.
const MAX_DELAY_MS = 2 ** 31 - 1;

/** `setTimeout`, unref'd: a pending refresh never keeps the process alive. */
export const systemScheduler: Scheduler = {
  schedule(delayMs, task) {
    const timer = setTimeout(task, Math.min(Math.max(0, delayMs), MAX_DELAY_MS));
    timer.unref();
    return () => clearTimeout(timer);
  },
};
