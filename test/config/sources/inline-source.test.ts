import { describe, expect, it } from 'vitest';
import { InlineSource } from '../../../src/config/sources/inline-source.js';
import type { SourceUpdate } from '../../../src/config/sources/source.js';

async function load(source: InlineSource): Promise<SourceUpdate[]> {
  const updates: SourceUpdate[] = [];
  await source.start((update) => updates.push(update));
  await source.close();
  return updates;
}

const vs = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'a' }, spec: { hosts: ['a'] } };

describe('InlineSource', () => {
  it('delivers one document per object, located by index', async () => {
    const dr = { apiVersion: 'networking.istio.io/v1', kind: 'DestinationRule', metadata: { name: 'b' } };
    const [update, ...more] = await load(new InlineSource([vs, dr]));
    expect(more).toEqual([]);
    expect(update?.source).toBe('inline');
    expect(update?.issues).toEqual([]);
    expect(update?.documents.map((d) => d.value)).toEqual([vs, dr]);
    expect(update?.documents.map((d) => d.location)).toEqual([{ file: 'inline[0]' }, { file: 'inline[1]' }]);
  });

  it('uses the given id in locations', async () => {
    const [update] = await load(new InlineSource([vs], { id: 'defaults' }));
    expect(update?.source).toBe('defaults');
    expect(update?.documents[0]?.location).toEqual({ file: 'defaults[0]' });
  });

  it('copies the objects, so later changes by the caller have no effect', async () => {
    const mine = structuredClone(vs);
    const source = new InlineSource([mine]);
    mine.spec.hosts.push('b');
    const [update] = await load(source);
    expect(update?.documents[0]?.value).toEqual(vs);
  });

  it('delivers the same document objects on every start', async () => {
    const source = new InlineSource([vs]);
    const [first] = await load(source);
    const [second] = await load(source);
    expect(second?.documents[0]).toBe(first?.documents[0]);
  });

  it('expands lists, filling in what typed-list items omit', async () => {
    const list = { apiVersion: 'v1', kind: 'List', items: [vs, { ...vs, metadata: { name: 'b' } }] };
    const typed = { apiVersion: 'networking.istio.io/v1', kind: 'VirtualServiceList', items: [{ metadata: { name: 'c' } }] };
    const [update] = await load(new InlineSource([list, typed]));
    expect(update?.issues).toEqual([]);
    expect(update?.documents.map((d) => d.location.file)).toEqual(['inline[0].items[0]', 'inline[0].items[1]', 'inline[1].items[0]']);
    expect(update?.documents[2]?.value).toEqual({ apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'c' } });
  });

  it('turns Dates into strings as JSON would', async () => {
    const created = new Date('2026-01-02T03:04:05Z');
    const [update] = await load(new InlineSource([{ ...vs, metadata: { name: 'a', creationTimestamp: created } }]));
    expect(update?.documents[0]?.value).toMatchObject({ metadata: { creationTimestamp: '2026-01-02T03:04:05.000Z' } });
  });

  it('reports objects that are not Kubernetes objects or not JSON', async () => {
    const cyclic: Record<string, unknown> = { kind: 'A' };
    cyclic['self'] = cyclic;
    const [update] = await load(new InlineSource(['text', [vs], cyclic, { kind: 'List', items: [1] }, vs]));
    expect(update?.documents.map((d) => d.location.file)).toEqual(['inline[4]']);
    expect(update?.issues.map((i) => [i.location?.file, i.code, i.severity])).toEqual([
      ['inline[0]', 'parse', 'error'],
      ['inline[1]', 'parse', 'error'],
      ['inline[2]', 'parse', 'error'],
      ['inline[3].items[0]', 'parse', 'error'],
    ]);
    expect(update?.issues[0]?.message).toBe('expected a Kubernetes object (mapping with apiVersion, kind, metadata), found a string ("text")');
    expect(update?.issues[2]?.message).toMatch(/^cannot be represented as JSON: /);
  });
});
