import { EventEmitter } from 'node:events';
import type * as NodeFs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileSource } from '../../../src/config/sources/file-source.js';
import type { SourceUpdate } from '../../../src/config/sources/source.js';
import { SourceUpdateRecorder } from '../../helpers/source-update-recorder.js';
import { TestClock } from '../../helpers/test-clock.js';
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.js';

/** A watcher that never reports anything, like fs.watch on a file system without notifications. */
class SilentWatcher extends EventEmitter {
  closed = false;
  close(): void {
    this.closed = true;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

const fakeWatch = vi.hoisted(() => ({ watchers: [] as { closed: boolean; emit(event: string, ...args: unknown[]): boolean }[], throwNext: false }));

vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof NodeFs>();
  return {
    ...actual,
    watch: () => {
      if (fakeWatch.throwNext) {
        fakeWatch.throwNext = false;
        throw Object.assign(new Error('inotify watch limit reached'), { code: 'ENOSPC' });
      }
      const watcher = new SilentWatcher();
      fakeWatch.watchers.push(watcher);
      return watcher;
    },
  };
});

function names(update: SourceUpdate): string[] {
  return update.documents.map((d) => (d.value as { metadata: { name: string } }).metadata.name);
}

describe('FileSource: poll fallback when fs.watch reports nothing', () => {
  let dir: string;
  let source: FileSource | undefined;

  beforeEach(async () => {
    dir = await makeTempDir();
    fakeWatch.watchers.length = 0;
    fakeWatch.throwNext = false;
  });
  afterEach(async () => {
    await source?.close();
    source = undefined;
    await removeTempDir(dir);
  });

  it('still sees changes, through the poll', async () => {
    await writeFile(join(dir, 'a.yaml'), 'kind: A\nmetadata: { name: a }\n');
    const recorder = new SourceUpdateRecorder();
    const clock = new TestClock();
    source = new FileSource([dir], { debounceMs: 10, pollIntervalMs: 50, clock });
    await source.start(recorder.onUpdate);
    expect(fakeWatch.watchers.length).toBeGreaterThan(0);

    let delivered = false;
    const next = recorder
      .next((u) => names(u).join() === 'a,b')
      .then(() => {
        delivered = true;
      });
    await writeFile(join(dir, 'b.yaml'), 'kind: B\nmetadata: { name: b }\n');
    // The poll (every 50 ms) sees the new file and sets the rescan's debounce (10 ms); the rescan
    // reads it, and reads it again a settle period later (settleMs: the debounce) before it delivers.
    // fs.watch says nothing here: only the poll can have seen it.
    expect(clock.advance(50).map((t) => t.delayMs)).toContain(50);
    while (!delivered) await Promise.race([clock.next((t) => t.delayMs === 10), next]);
    await next;
  });

  it('survives watcher errors and watchers that cannot be created', async () => {
    await writeFile(join(dir, 'a.yaml'), 'kind: A\nmetadata: { name: a }\n');
    const recorder = new SourceUpdateRecorder();
    fakeWatch.throwNext = true;
    source = new FileSource([dir], { debounceMs: 10, pollIntervalMs: 50 });
    await source.start(recorder.onUpdate);
    for (const watcher of fakeWatch.watchers) watcher.emit('error', new Error('EIO'));

    const next = recorder.next((u) => names(u).join() === 'a,b');
    await writeFile(join(dir, 'b.yaml'), 'kind: B\nmetadata: { name: b }\n');
    await next;
  });

  it('closes every watcher it created', async () => {
    await writeFile(join(dir, 'a.yaml'), 'kind: A\nmetadata: { name: a }\n');
    source = new FileSource([dir, join(dir, 'a.yaml')]);
    await source.start(() => undefined);
    expect(fakeWatch.watchers.length).toBeGreaterThan(0);
    await source.close();
    expect(fakeWatch.watchers.every((w) => w.closed)).toBe(true);
  });

  it('does not watch or poll when watch is false', async () => {
    const clock = new TestClock();
    source = new FileSource([dir], { watch: false, clock });
    await source.start(() => undefined);
    expect(fakeWatch.watchers).toHaveLength(0);
    expect(clock.scheduled).toEqual([]);
  });
});
