import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { KubeChange, KubeCollection, KubeObject, KubeResourceType } from '../../src/kubernetes/collection.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { TestClock } from '../helpers/test-clock.js';

const SERVICES: KubeResourceType = { group: '', version: 'v1', plural: 'services', kind: 'Service', namespaced: true };
const PODS_METADATA: KubeResourceType = { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true, metadataOnly: true };
const FAST = { backoff: { initialMs: 20, maxMs: 200 } };
const WAIT = { timeout: 10_000, interval: 20 };

function service(name: string, namespace = 'shop', port = 80): FakeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { ports: [{ port }] } };
}

function portOf(object: KubeObject | undefined): unknown {
  return (object as unknown as { spec?: { ports?: { port: number }[] } } | undefined)?.spec?.ports?.[0]?.port;
}

/** Records every batch a collection delivers. */
function record<T extends KubeObject>(collection: KubeCollection<T>): KubeChange<T>[][] {
  const batches: KubeChange<T>[][] = [];
  collection.onChange((changes) => batches.push([...changes]));
  return batches;
}

function names(batches: KubeChange<KubeObject>[][]): string[] {
  return batches.flat().map((c) => `${c.type} ${c.object.metadata.name}`);
}

describe('reflector against the fake API server', () => {
  let api: FakeKubeApi;
  let dir: string;
  let watcher: KubeApiWatcher | undefined;

  beforeEach(async () => {
    api = await FakeKubeApi.start({ token: 'secret-1' });
    dir = await makeTempDir();
  });

  afterEach(async () => {
    await watcher?.close();
    watcher = undefined;
    await api.close();
    await removeTempDir(dir);
  });

  async function connect(extra: Parameters<typeof KubeApiWatcher.connect>[0] = {}): Promise<KubeApiWatcher> {
    const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
    watcher = await KubeApiWatcher.connect({ kubeconfig, ...FAST, ...extra });
    return watcher;
  }

  it('lists every object across pages, then applies watch events in order', async () => {
    for (let i = 0; i < 7; i++) api.create(service(`svc-${i}`));
    api.create(service('elsewhere', 'other'));
    const w = await connect({ pageSize: 3 });
    const services = w.collection(SERVICES, { namespace: 'shop' });
    const batches = record(services);
    await services.synced;
    expect([...services.items.keys()].sort()).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `shop/svc-${i}`));
    expect(services.items.get('shop/svc-0')?.kind).toBe('Service');
    // Seven objects at three a page: three list requests, the last two with a continue token.
    const lists = api.requests.filter((r) => r.url.startsWith('/api/v1/namespaces/shop/services?') && !r.url.includes('watch'));
    expect(lists).toHaveLength(3);
    expect(lists.filter((r) => r.url.includes('continue='))).toHaveLength(2);

    api.update(service('svc-1', 'shop', 8080));
    api.create(service('svc-new'));
    api.delete('v1', 'Service', 'svc-2', 'shop');
    api.create(service('ignored', 'other'));
    await vi.waitFor(() => expect(services.items.has('shop/svc-2')).toBe(false), WAIT);
    expect(portOf(services.items.get('shop/svc-1'))).toBe(8080);
    expect(services.items.has('shop/svc-new')).toBe(true);
    expect(services.items.has('other/ignored')).toBe(false);
    expect(names(batches).slice(-3)).toEqual(['MODIFIED svc-1', 'ADDED svc-new', 'DELETED svc-2']);
    expect(services.status.synced).toBe(true);
    expect(services.status.error).toBeUndefined();
  });

  it('asks for metadata only and gets PartialObjectMetadata with labels', async () => {
    api.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'p1', namespace: 'shop', labels: { version: 'v1' } },
      spec: { containers: [{ name: 'big' }] },
    });
    const w = await connect();
    const pods = w.collection(PODS_METADATA, { namespace: 'shop' });
    await pods.synced;
    expect(pods.items.get('shop/p1')?.metadata.labels).toEqual({ version: 'v1' });
    expect((pods.items.get('shop/p1') as unknown as { spec?: unknown }).spec).toBeUndefined();
    api.update({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p1', namespace: 'shop', labels: { version: 'v2' } }, spec: {} });
    await vi.waitFor(() => expect(pods.items.get('shop/p1')?.metadata.labels).toEqual({ version: 'v2' }), WAIT);
    expect(api.requests.filter((r) => r.url.startsWith('/api/v1/namespaces/shop/pods')).every((r) => r.accept.includes('as=PartialObjectMetadata'))).toBe(true);
  });

  it('resumes after a bookmark from its resourceVersion, receiving no old event twice', async () => {
    api.create(service('a'));
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    const batches = record(services);
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    // Changes in another namespace move the resourceVersion; the bookmark tells the watch so.
    for (let i = 0; i < 5; i++) api.create(service(`o-${i}`, 'other'));
    api.bookmark();
    const bookmarked = api.resourceVersion;
    // History before the bookmark is gone: only a watch that took the bookmark resumes without 410.
    api.compact();
    const lists = () => api.requests.filter((r) => r.url.includes('/services?') && !r.url.includes('watch=')).length;
    const listsBefore = lists();
    await vi.waitFor(() => {
      api.dropWatches();
      const resumed = api.requests.filter((r) => r.url.includes('watch=1') && r.url.includes(`resourceVersion=${bookmarked}`));
      expect(resumed.length).toBeGreaterThan(0);
    }, WAIT);
    api.create(service('b'));
    await vi.waitFor(() => expect(services.items.has('shop/b')).toBe(true), WAIT);
    expect(names(batches)).toEqual(['ADDED b']);
    expect(lists()).toBe(listsBefore);
  });

  it.each(['event', 'status'] as const)('410 Gone (%s) re-lists and delivers only the difference, keeping known objects meanwhile', async (goneAs) => {
    await api.close();
    api = await FakeKubeApi.start({ token: 'secret-1', goneAs });
    api.create(service('kept'));
    api.create(service('changed'));
    api.create(service('removed'));
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    const batches = record(services);
    let sawEmpty = false;
    services.onChange(() => {
      if (!services.items.has('shop/kept')) sawEmpty = true;
    });
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    // Stop the stream, change things, and forget the history so the resumed watch gets 410.
    await api.suspend();
    api.update(service('changed', 'shop', 9090));
    api.delete('v1', 'Service', 'removed', 'shop');
    api.create(service('added'));
    api.compact();
    await api.resume();
    await vi.waitFor(() => expect(services.items.has('shop/added')).toBe(true), WAIT);
    expect(names(batches).sort()).toEqual(['ADDED added', 'DELETED removed', 'MODIFIED changed']);
    expect(sawEmpty).toBe(false);
    expect(portOf(services.items.get('shop/changed'))).toBe(9090);
    expect(services.items.has('shop/kept')).toBe(true);
    await vi.waitFor(() => expect(services.status.error).toBeUndefined(), WAIT);
  });

  it('a watch that fell out of the history window (historyLimit) re-lists', async () => {
    await api.close();
    api = await FakeKubeApi.start({ token: 'secret-1', historyLimit: 3 });
    api.create(service('a'));
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    const batches = record(services);
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    await api.suspend();
    for (let i = 0; i < 5; i++) api.create(service(`n-${i}`));
    api.delete('v1', 'Service', 'a', 'shop');
    await api.resume();
    await vi.waitFor(() => expect(services.items.size).toBe(5), WAIT);
    expect(names(batches).sort()).toEqual(['ADDED n-0', 'ADDED n-1', 'ADDED n-2', 'ADDED n-3', 'ADDED n-4', 'DELETED a']);
    // Re-listed: the watch from the old resourceVersion was refused with 410.
    expect(api.requests.filter((r) => r.url.startsWith('/api/v1/namespaces/shop/services?') && !r.url.includes('watch=')).length).toBe(2);
  });

  it('waits out a jittered, doubling back-off on the mesh clock before it lists again', async () => {
    api.create(service('a'));
    api.forbid('services');
    const clock = new TestClock();
    const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
    watcher = await KubeApiWatcher.connect({ kubeconfig, backoff: { initialMs: 1_000, maxMs: 30_000 } }, { clock });
    const services = watcher.collection(SERVICES, { namespace: 'shop' });
    const lists = (): number => api.requests.filter((r) => r.url.startsWith('/api/v1/namespaces/shop/services?')).length;
    // Half fixed, half random: the first pause is in [500, 1000] ms, the second in [1000, 2000].
    const first = await clock.until();
    expect(services.status.error?.message).toContain('forbidden');
    expect(first.delayMs).toBeGreaterThanOrEqual(500);
    expect(first.delayMs).toBeLessThanOrEqual(1_000);
    expect(lists()).toBe(1);
    clock.advance(first.delayMs);
    const second = await clock.until();
    expect(lists()).toBe(2);
    expect(second.delayMs).toBeGreaterThanOrEqual(1_000);
    expect(second.delayMs).toBeLessThanOrEqual(2_000);
    api.allow('services');
    // Nothing is tried before the back-off has passed.
    clock.advance(second.delayMs - 1);
    expect(lists()).toBe(2);
    clock.advance(1);
    await services.synced;
    expect([...services.items.keys()]).toEqual(['shop/a']);
    await vi.waitFor(() => expect(services.status.error).toBeUndefined(), WAIT);
  });

  it('reconnects when the server closes the stream, without re-delivering anything', async () => {
    api.create(service('a'));
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    const batches = record(services);
    for (let round = 0; round < 3; round++) {
      await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
      api.dropWatches();
      api.create(service(`after-drop-${round}`));
      await vi.waitFor(() => expect(services.items.has(`shop/after-drop-${round}`)).toBe(true), WAIT);
    }
    expect(names(batches)).toEqual(['ADDED after-drop-0', 'ADDED after-drop-1', 'ADDED after-drop-2']);
    expect(services.status.restarts).toBeGreaterThanOrEqual(3);
    expect(services.status.error).toBeUndefined();
  });

  it('a watch line that is not JSON is an error: reported, then watched again from the last resourceVersion', async () => {
    api.create(service('a'));
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    const batches = record(services);
    const errors: string[] = [];
    services.onStatus((status) => {
      if (status.error) errors.push(status.error.message);
    });
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    api.update(service('a', 'shop', 81));
    api.injectWatchLine('{"type": "MODIFIED", "object": {');
    api.create(service('b'));
    await vi.waitFor(() => expect(services.items.has('shop/b')).toBe(true), WAIT);
    expect(errors).toEqual(['v1 Service in shop watch: the API server answered with invalid JSON']);
    expect(names(batches)).toEqual(['MODIFIED a', 'ADDED b']);
    expect(portOf(services.items.get('shop/a'))).toBe(81);
    await vi.waitFor(() => expect(services.status.error).toBeUndefined(), WAIT);
  });

  it('keeps the last state when the API is unreachable, reports it, and catches up on recovery', async () => {
    api.create(service('a'));
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    await api.suspend();
    await vi.waitFor(() => expect(services.status.error?.message).toMatch(/ECONNREFUSED/), WAIT);
    expect(services.items.has('shop/a')).toBe(true);
    api.create(service('while-down'));
    await api.resume();
    await vi.waitFor(() => expect(services.items.has('shop/while-down')).toBe(true), WAIT);
    await vi.waitFor(() => expect(services.status.error).toBeUndefined(), WAIT);
  });

  it('a 503 keeps the last state with the error in status, then recovers', async () => {
    api.create(service('a'));
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    api.setUnavailable(true);
    await vi.waitFor(() => expect(services.status.error?.message).toMatch(/503/), WAIT);
    expect(services.items.has('shop/a')).toBe(true);
    api.setUnavailable(false);
    api.update(service('a', 'shop', 1234));
    await vi.waitFor(() => expect(portOf(services.items.get('shop/a'))).toBe(1234), WAIT);
    await vi.waitFor(() => expect(services.status.error).toBeUndefined(), WAIT);
  });

  it('403 (missing RBAC) is reported with the API message; the watch recovers once allowed', async () => {
    api.create(service('a'));
    api.forbid('services');
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    const statuses: string[] = [];
    w.onStatus((report) => statuses.push(`${report.description}: ${report.status.error?.message ?? 'ok'}`));
    await vi.waitFor(() => expect(services.status.error?.message).toMatch(/403 services is forbidden/), WAIT);
    expect(services.status.synced).toBe(false);
    expect(w.reports()).toEqual([{ description: 'v1 Service in shop', status: services.status }]);
    api.allow('services');
    await services.synced;
    expect(services.items.has('shop/a')).toBe(true);
    await vi.waitFor(() => expect(services.status.error).toBeUndefined(), WAIT);
    expect(statuses.some((s) => s.startsWith('v1 Service in shop: GET') && s.includes('403'))).toBe(true);
  });

  it('401 keeps the last state; in a pod, the rotated service account token is read again', async () => {
    const sa = join(dir, 'serviceaccount');
    await import('node:fs/promises').then((fs) => fs.mkdir(sa));
    await writeFile(join(sa, 'token'), 'secret-1\n');
    await writeFile(join(sa, 'namespace'), 'shop');
    api.create(service('a'));
    watcher = await KubeApiWatcher.connect({ server: api.url, serviceAccountDir: sa, ...FAST });
    expect(watcher.access.namespace).toBe('shop');
    const services = watcher.collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    // The server moves to a new token: the old one is refused.
    api.setToken('secret-2');
    api.dropWatches();
    await vi.waitFor(() => expect(services.status.error?.message).toMatch(/401/), WAIT);
    expect(services.items.has('shop/a')).toBe(true);
    // kubelet writes the rotated token; the next attempt uses it.
    api.create(service('b'));
    await writeFile(join(sa, 'token'), 'secret-2\n');
    await vi.waitFor(() => expect(services.items.has('shop/b')).toBe(true), WAIT);
    await vi.waitFor(() => expect(services.status.error).toBeUndefined(), WAIT);
  });

  it('selects a named kubeconfig context and reports an unknown one clearly', async () => {
    const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'), { context: 'staging', namespace: 'shop' });
    watcher = await KubeApiWatcher.connect({ kubeconfig, context: 'staging', ...FAST });
    expect(watcher.access.namespace).toBe('shop');
    await expect(KubeApiWatcher.connect({ kubeconfig, context: 'prod' })).rejects.toThrow('kubeconfig has no context named "prod"');
  });

  it('close() stops the watches and rejects a pending first sync', async () => {
    api.forbid('services');
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    await w.close();
    await expect(services.synced).rejects.toThrow(/closed before the first list/);
    expect(() => w.collection(SERVICES)).toThrow(/closed/);
  });
});
