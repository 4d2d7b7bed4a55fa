import type { SourceUpdate } from '../../src/config/sources/source.js';

interface Waiter {
  readonly predicate: (update: SourceUpdate) => boolean;
  readonly resolve: (update: SourceUpdate) => void;
}

/**
 * Collects the updates a ConfigSource delivers and lets a test wait for one with a given content,
 * so watch tests wait on events instead of sleeping and hoping.
 */
export class SourceUpdateRecorder {
  readonly updates: SourceUpdate[] = [];
  private readonly waiters = new Set<Waiter>();

  readonly onUpdate = (update: SourceUpdate): void => {
    this.updates.push(update);
    for (const waiter of [...this.waiters]) {
      if (waiter.predicate(update)) {
        this.waiters.delete(waiter);
        waiter.resolve(update);
      }
    }
  };

  get latest(): SourceUpdate | undefined {
    return this.updates.at(-1);
  }

  /** The first update delivered after this call that satisfies `predicate`. */
  next(predicate: (update: SourceUpdate) => boolean = () => true, timeoutMs = 15_000): Promise<SourceUpdate> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        const seen = this.updates.map((u) => JSON.stringify(u.documents.map((d) => d.value))).join('\n  ');
        reject(new Error(`no matching update within ${timeoutMs} ms; updates so far:\n  ${seen}`));
      }, timeoutMs);
      const waiter: Waiter = {
        predicate,
        resolve: (update) => {
          clearTimeout(timer);
          resolve(update);
        },
      };
      this.waiters.add(waiter);
    });
  }
}
