import { chmod, mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RawDocument } from '../../../src/config/document.js';
import { FileSource } from '../../../src/config/sources/file-source.js';
import type { SourceUpdate } from '../../../src/config/sources/source.js';
import { makeTempDir, removeTempDir } from '../../helpers/temp-dir.js';

function resource(kind: string, name: string): string {
  return `apiVersion: networking.istio.io/v1\nkind: ${kind}\nmetadata:\n  name: ${name}\n`;
}

function names(update: SourceUpdate | undefined): string[] {
  return (update?.documents ?? []).map((d) => (d.value as { metadata: { name: string } }).metadata.name);
}

/** Reads once without watching. */
async function load(paths: string[]): Promise<SourceUpdate> {
  const source = new FileSource(paths, { watch: false });
  let received: SourceUpdate | undefined;
  await source.start((update) => {
    received = update;
  });
  await source.close();
  if (!received) throw new Error('start() resolved without delivering an update');
  return received;
}

describe('FileSource: reading', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('reads YAML and JSON files recursively in sorted order, skipping dot files and other extensions', async () => {
    await mkdir(join(dir, 'b-nested', 'deeper'), { recursive: true });
    await mkdir(join(dir, '.hidden'));
    await writeFile(join(dir, 'c.yml'), resource('VirtualService', 'c'));
    await writeFile(join(dir, 'a.yaml'), `${resource('VirtualService', 'a1')}---\n${resource('VirtualService', 'a2')}`);
    await writeFile(join(dir, 'b-nested', 'deeper', 'd.json'), JSON.stringify({ kind: 'ServiceEntry', metadata: { name: 'd' } }));
    await writeFile(join(dir, 'b-nested', 'b.YAML'), resource('ServiceEntry', 'b'));
    await writeFile(join(dir, 'README.md'), '# not config\n');
    await writeFile(join(dir, 'notes.txt'), 'kind: nope\n');
    await writeFile(join(dir, '.secret.yaml'), resource('VirtualService', 'dotfile'));
    await writeFile(join(dir, '.hidden', 'x.yaml'), resource('VirtualService', 'hidden'));
    await writeFile(join(dir, 'a.yaml.swp'), 'garbage');

    const update = await load([dir]);
    expect(update.issues).toEqual([]);
    expect(names(update)).toEqual(['a1', 'a2', 'b', 'd', 'c']);
    expect(update.documents[2]?.location).toEqual({ file: join(dir, 'b-nested', 'b.YAML'), line: 1, column: 1 });
    expect(update.documents[1]?.location).toEqual({ file: join(dir, 'a.yaml'), line: 6, column: 1 });
  });

  it('uses the given id, or one derived from the paths', async () => {
    expect(new FileSource([dir], { watch: false, id: 'mine' }).id).toBe('mine');
    expect(new FileSource([dir], { watch: false }).id).toBe(`file:${dir}`);
    expect((await load([dir])).source).toBe(`file:${dir}`);
  });

  it('reads an explicitly named file whatever its extension', async () => {
    const file = join(dir, 'mesh.conf');
    await writeFile(file, resource('VirtualService', 'x'));
    const update = await load([file]);
    expect(names(update)).toEqual(['x']);
    expect(update.documents[0]?.location.file).toBe(file);
  });

  it('reports a missing path as an error naming it, and still delivers the rest', async () => {
    await writeFile(join(dir, 'ok.yaml'), resource('VirtualService', 'ok'));
    const missing = join(dir, 'nope', 'missing.yaml');
    const update = await load([missing, dir]);
    expect(update.issues).toEqual([{ severity: 'error', code: 'source', message: `${missing} does not exist`, location: { file: missing } }]);
    expect(names(update)).toEqual(['ok']);
  });

  it('reports a syntax error and drops only that file', async () => {
    await writeFile(join(dir, 'a.yaml'), resource('VirtualService', 'a'));
    await writeFile(join(dir, 'b.yaml'), `${resource('VirtualService', 'b')}spec: [\n`);
    const update = await load([dir]);
    expect(names(update)).toEqual(['a']);
    expect(update.issues).toEqual([
      expect.objectContaining({ severity: 'error', code: 'parse', location: expect.objectContaining({ file: join(dir, 'b.yaml') }) }),
    ]);
  });

  it('reads a file reached twice only once', async () => {
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'a.yaml'), resource('VirtualService', 'a'));
    const update = await load([dir, join(dir, 'sub'), join(dir, 'sub', 'a.yaml')]);
    expect(names(update)).toEqual(['a']);
  });

  it('follows symlinks to files and directories and survives symlink loops', async () => {
    const outside = join(dir, 'outside');
    const config = join(dir, 'config');
    await mkdir(outside);
    await mkdir(config);
    await writeFile(join(outside, 'target.yaml'), resource('VirtualService', 'linked-file'));
    await mkdir(join(outside, 'more'));
    await writeFile(join(outside, 'more', 'm.yaml'), resource('VirtualService', 'linked-dir'));
    await symlink(join(outside, 'target.yaml'), join(config, 'link.yaml'));
    await symlink(join(outside, 'more'), join(config, 'more-link'));
    await symlink(config, join(config, 'loop')); // config/loop -> config
    await symlink('self-a', join(config, 'self-b.yaml'));
    await symlink('self-b.yaml', join(config, 'self-a'));
    const update = await load([config]);
    expect(names(update)).toEqual(['linked-file', 'linked-dir']);
    expect(update.documents[0]?.location.file).toBe(join(config, 'link.yaml'));
    expect(update.issues).toEqual([expect.objectContaining({ severity: 'warning', code: 'source', location: { file: join(config, 'self-b.yaml') } })]);
  });

  it('warns about, and skips, a dangling symlink in a directory', async () => {
    await symlink(join(dir, 'gone.yaml'), join(dir, 'dangling.yaml'));
    await writeFile(join(dir, 'ok.yaml'), resource('VirtualService', 'ok'));
    const update = await load([dir]);
    expect(names(update)).toEqual(['ok']);
    expect(update.issues).toEqual([
      {
        severity: 'warning',
        code: 'source',
        message: `${join(dir, 'dangling.yaml')} is a symbolic link to nothing; skipped`,
        location: { file: join(dir, 'dangling.yaml') },
      },
    ]);
  });

  it.skipIf(process.getuid?.() === 0)('reports an unreadable file as an error', async () => {
    const file = join(dir, 'locked.yaml');
    await writeFile(file, resource('VirtualService', 'x'));
    await chmod(file, 0o000);
    const update = await load([dir]);
    expect(update.documents).toEqual([]);
    expect(update.issues).toEqual([expect.objectContaining({ severity: 'error', code: 'source', message: `${file} cannot be read: permission denied` })]);
  });

  it('reads a Kubernetes ConfigMap volume through its top-level symlinks, each file once', async () => {
    // The layout the kubelet's atomic writer leaves behind.
    const stamp = '..2026_11_22_10_00_00.123456789';
    await mkdir(join(dir, stamp));
    await writeFile(join(dir, stamp, 'routes.yaml'), resource('VirtualService', 'routes'));
    await writeFile(join(dir, stamp, 'rules.json'), JSON.stringify({ kind: 'DestinationRule', metadata: { name: 'rules' } }));
    await symlink(stamp, join(dir, '..data_tmp'));
    await rename(join(dir, '..data_tmp'), join(dir, '..data'));
    await symlink(join('..data', 'routes.yaml'), join(dir, 'routes.yaml'));
    await symlink(join('..data', 'rules.json'), join(dir, 'rules.json'));

    const update = await load([dir]);
    expect(update.issues).toEqual([]);
    expect(names(update)).toEqual(['routes', 'rules']);
    expect(update.documents.map((d: RawDocument) => d.location.file)).toEqual([join(dir, 'routes.yaml'), join(dir, 'rules.json')]);
  });

  it('rejects a second start', async () => {
    const source = new FileSource([dir], { watch: false });
    await source.start(() => undefined);
    await expect(source.start(() => undefined)).rejects.toThrow(/already started/);
    await source.close();
  });
});
