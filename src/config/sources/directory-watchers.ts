import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename } from 'node:path';
import type { MeshClock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { WatchTarget } from './file-scan.js';

interface ActiveWatch {
  readonly watcher: FSWatcher;
  readonly identity: string;
  names: ReadonlySet<string> | 'all';
}

/**
 * One `fs.watch` per directory of interest, kept in step with the latest scan. A watcher only says
 * "something may have changed"; the owner rescans and compares content, so spurious events cost a
 * scan and never an update. Watchers never keep the process alive, and their failures are absorbed:
 * the owner's poll covers whatever they miss.
 */
export class DirectoryWatchers {
  private readonly active = new Map<string, ActiveWatch>();
  private readonly failedAt = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly onChange: () => void,
    /** After a directory's watcher failed, leave it to the poll for this long before trying again. */
    private readonly retryAfterMs = 10_000,
    private readonly clock: MeshClock = systemClock,
  ) {}

  get size(): number {
    return this.active.size;
  }

  update(targets: ReadonlyMap<string, WatchTarget>): void {
    if (this.closed) return;
    for (const [dir, entry] of this.active) {
      const target = targets.get(dir);
      if (target && target.identity === entry.identity) entry.names = target.names;
      else this.stop(dir);
    }
    for (const [dir, target] of targets) {
      if (!this.active.has(dir)) this.start(dir, target);
    }
  }

  close(): void {
    this.closed = true;
    for (const dir of [...this.active.keys()]) this.stop(dir);
  }

  private start(dir: string, target: WatchTarget): void {
    const failed = this.failedAt.get(dir);
    if (failed !== undefined && this.clock.now() - failed < this.retryAfterMs) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, filename) => this.event(dir, watcher, filename));
    } catch {
      // ENOENT (gone since the scan), ENOSPC (inotify watch limit), EPERM: the poll takes over.
      this.failedAt.set(dir, this.clock.now());
      return;
    }
    watcher.on('error', () => this.fail(dir, watcher));
    this.active.set(dir, { watcher, identity: target.identity, names: target.names });
  }

  private event(dir: string, watcher: FSWatcher, filename: string | null): void {
    const entry = this.active.get(dir);
    if (this.closed || entry?.watcher !== watcher) return;
    if (filename === basename(dir)) {
      // On Linux the watched directory itself being deleted is reported under its own name, and
      // the watch is dead from then on; drop it so the next scan watches whatever is there now.
      this.stop(dir);
      this.onChange();
      return;
    }
    if (filename === null || entry.names === 'all' || entry.names.has(filename) || filename.startsWith('..')) {
      this.onChange();
    }
  }

  private fail(dir: string, watcher: FSWatcher): void {
    if (this.active.get(dir)?.watcher === watcher) this.stop(dir);
    else watcher.close();
    this.failedAt.set(dir, this.clock.now());
    if (!this.closed) this.onChange();
  }

  private stop(dir: string): void {
    const entry = this.active.get(dir);
    if (!entry) return;
    this.active.delete(dir);
    try {
      entry.watcher.close();
    } catch {
      // Closing a watcher whose directory is gone may fail; it is released either way.
    }
  }
}
