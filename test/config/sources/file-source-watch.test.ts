import { existsSync, mkdirSync, readlinkSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdir, rename, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileSource } from '../../../src/config/sources/file-source.js';
import type { SourceUpdate } from '../../../src/config/sources/source.js';
import { SourceUpdateRecorder } from '../../helpers/source-update-recorder.js';
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.js';
import { TestClock } from '../../helpers/test-clock.js';

function resource(name: string, version = 1): string {
  return `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: ${name}\nspec:\n  version: ${version}\n`;
}

/** `name@version` of every document, in order. */
function content(update: SourceUpdate | undefined): string[] {
  return (update?.documents ?? []).map((d) => {
    const value = d.value as { metadata: { name: string }; spec: { version: number } };
    return `${value.metadata.name}@${value.spec.version}`;
  });
}

function has(...expected: string[]): (update: SourceUpdate) => boolean {
  return (update) => JSON.stringify(content(update)) === JSON.stringify(expected);
}

/**
 * Writes a ConfigMap volume exactly as the kubelet's atomic writer does: payload into a new
 * timestamped directory, `..data_tmp` symlink to it renamed over `..data`, user-visible symlinks
 * created or removed, old timestamped directory deleted. Synchronous, as one burst.
 */
function kubeletWrite(dir: string, stamp: string, files: Record<string, string>): void {
  const payloadDir = `..${stamp}`;
  mkdirSync(join(dir, payloadDir));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, payloadDir, name), text);
  const previous = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
  symlinkSync(payloadDir, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    if (!existsSync(join(dir, name))) symlinkSync(join('..data', name), join(dir, name));
  }
  if (previous !== undefined) {
    for (const name of Object.keys(KUBELET_STATE.get(dir) ?? {})) {
      if (!(name in files)) unlinkSync(join(dir, name));
    }
    rmSync(join(dir, previous), { recursive: true });
  }
  KUBELET_STATE.set(dir, files);
}
const KUBELET_STATE = new Map<string, Record<string, string>>();

describe('FileSource: watching', () => {
  let dir: string;
  let source: FileSource | undefined;
  let recorder: SourceUpdateRecorder;

  beforeEach(async () => {
    dir = await makeTempDir();
    recorder = new SourceUpdateRecorder();
  });
  afterEach(async () => {
    await source?.close();
    source = undefined;
    await removeTempDir(dir);
  });

  async function startWatching(paths: string[]): Promise<FileSource> {
    source = new FileSource(paths, { debounceMs: 50, parseGraceMs: 200 });
    await source.start(recorder.onUpdate);
    return source;
  }

  it('delivers the full content once on start, before start resolves', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    await startWatching([dir]);
    expect(recorder.updates).toHaveLength(1);
    expect(content(recorder.latest)).toEqual(['a@1']);
  });

  it('delivers an edit, keeping the documents of unchanged files identical', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    await writeFile(join(dir, 'b.yaml'), `${resource('b1')}---\n${resource('b2')}`);
    await startWatching([dir]);
    const before = recorder.latest;

    const next = recorder.next(has('a@2', 'b1@1', 'b2@1'));
    await writeFile(join(dir, 'a.yaml'), resource('a', 2));
    const after = await next;

    expect(after.documents[1]).toBe(before?.documents[1]);
    expect(after.documents[2]).toBe(before?.documents[2]);
    expect(after.documents[0]).not.toBe(before?.documents[0]);
  });

  it('delivers added and deleted files', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    await startWatching([dir]);

    const added = recorder.next(has('a@1', 'b@1'));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'b.yaml'), resource('b'));
    await added;

    const deleted = recorder.next(has('b@1'));
    await unlink(join(dir, 'a.yaml'));
    await deleted;

    const nested = recorder.next(has('b@2'));
    await writeFile(join(dir, 'sub', 'b.yaml'), resource('b', 2));
    await nested;

    const removedDir = recorder.next(has());
    await rm(join(dir, 'sub'), { recursive: true });
    await removedDir;
  });

  it('follows an editor-style save (write a temporary file, rename it over the original)', async () => {
    const file = join(dir, 'mesh.yaml');
    await writeFile(file, resource('m'));
    await writeFile(join(dir, 'other.yaml'), resource('other'));
    await startWatching([file]);
    expect(content(recorder.latest)).toEqual(['m@1']);

    const next = recorder.next(has('m@2'));
    await writeFile(join(dir, '.mesh.yaml.tmp'), resource('m', 2));
    await rename(join(dir, '.mesh.yaml.tmp'), file);
    await next;
  });

  it('reports a syntax error introduced by an edit, then the fixed content', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    await writeFile(join(dir, 'b.yaml'), resource('b'));
    await startWatching([dir]);

    const broken = recorder.next((u) => u.issues.some((i) => i.code === 'parse'));
    await writeFile(join(dir, 'a.yaml'), `${resource('a', 2)}  bad: [\n`);
    const brokenUpdate = await broken;
    expect(content(brokenUpdate)).toEqual(['b@1']);
    expect(brokenUpdate.issues[0]).toMatchObject({ severity: 'error', location: { file: join(dir, 'a.yaml') } });

    const fixed = recorder.next(has('a@3', 'b@1'));
    await writeFile(join(dir, 'a.yaml'), resource('a', 3));
    expect((await fixed).issues).toEqual([]);
  });

  it('notices a configured path appearing after start, and disappearing again', async () => {
    const file = join(dir, 'later.yaml');
    await startWatching([file]);
    expect(recorder.latest?.issues).toEqual([expect.objectContaining({ code: 'source', location: { file } })]);

    const appeared = recorder.next(has('later@1'));
    await writeFile(file, resource('later'));
    expect((await appeared).issues).toEqual([]);

    const gone = recorder.next((u) => u.issues.length === 1 && u.documents.length === 0);
    await unlink(file);
    await gone;
  });

  it('follows the Kubernetes ..data swap with one update and no duplicate documents', async () => {
    kubeletWrite(dir, '2026_11_22_10_00_00.000000001', { 'routes.yaml': resource('routes'), 'rules.yaml': resource('rules') });
    await startWatching([dir]);
    const initial = recorder.latest;
    expect(content(initial)).toEqual(['routes@1', 'rules@1']);

    const swapped = recorder.next(has('routes@2', 'rules@1'));
    kubeletWrite(dir, '2026_11_22_10_05_00.000000002', { 'routes.yaml': resource('routes', 2), 'rules.yaml': resource('rules') });
    const update = await swapped;
    expect(update.issues).toEqual([]);
    // The unchanged file keeps its parse although its real path moved to the new timestamped dir.
    expect(update.documents[1]).toBe(initial?.documents[1]);

    // A second swap, with a key removed: by the time it arrives, the first swap produced exactly
    // one update (same content is never delivered twice).
    const third = recorder.next(has('routes@3'));
    kubeletWrite(dir, '2026_11_22_10_10_00.000000003', { 'routes.yaml': resource('routes', 3) });
    await third;
    const afterStart = recorder.updates.slice(1);
    expect(afterStart.filter(has('routes@2', 'rules@1'))).toHaveLength(1);
    for (const u of afterStart) {
      const seen = content(u).map((c) => c.split('@')[0]);
      expect(new Set(seen).size).toBe(seen.length);
    }
  });

  it('follows the ..data swap when the files are named explicitly', async () => {
    kubeletWrite(dir, '2026_01_01_00_00_00.000000001', { 'mesh.yaml': resource('mesh') });
    await startWatching([join(dir, 'mesh.yaml')]);
    const next = recorder.next(has('mesh@2'));
    kubeletWrite(dir, '2026_01_01_00_01_00.000000002', { 'mesh.yaml': resource('mesh', 2) });
    await next;
  });

  it('does not deliver an update when a change leaves the content as it was', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    await startWatching([dir]);
    // Replace a.yaml by the same bytes, touch it, write an ignored file, then make a real change:
    // the real change must be the very next update. (Replaced by rename, not rewritten in place,
    // so that no scan can catch the file empty halfway through the write.)
    await writeFile(join(dir, '.a.tmp'), resource('a'));
    await rename(join(dir, '.a.tmp'), join(dir, 'a.yaml'));
    await utimes(join(dir, 'a.yaml'), new Date(), new Date(Date.now() + 5_000));
    await writeFile(join(dir, 'notes.txt'), 'hello');
    const next = recorder.next();
    await writeFile(join(dir, 'b.yaml'), resource('b'));
    expect(content(await next)).toEqual(['a@1', 'b@1']);
    expect(recorder.updates).toHaveLength(2);
  });

  it('stops delivering after close', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    const closing = await startWatching([dir]);
    // A second source on the same directory proves the change was seen by the file system.
    const witness = new FileSource([dir], { debounceMs: 200 });
    const witnessRecorder = new SourceUpdateRecorder();
    await witness.start(witnessRecorder.onUpdate);
    try {
      await closing.close();
      const seen = witnessRecorder.next(has('a@2'));
      await writeFile(join(dir, 'a.yaml'), resource('a', 2));
      await seen;
      expect(recorder.updates).toHaveLength(1);
    } finally {
      await witness.close();
    }
  });

  it('keeps nothing alive: its watchers never hold the event loop, before or after close', async () => {
    const watchHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;
    const baseline = watchHandles();
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    const watching = await startWatching([dir, join(dir, 'a.yaml')]);
    const next = recorder.next(has('a@2'));
    await writeFile(join(dir, 'a.yaml'), resource('a', 2));
    await next;
    expect(watchHandles()).toBe(baseline);
    await watching.close();
    expect(watchHandles()).toBe(baseline);
  });

  it('clears its poll and debounce timers on close', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('a'));
    const clock = new TestClock();
    const watching = new FileSource([dir], { clock });
    await watching.start(() => undefined);
    expect(clock.waiting.map((t) => t.delayMs)).toContain(2_000);
    await watching.close();
    expect(clock.waiting).toEqual([]);
  });
});
