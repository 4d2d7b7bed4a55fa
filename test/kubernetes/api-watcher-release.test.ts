// KubeApiWatcher.release: a collection's watch stops once every user that asked for it released
// it, and not before (a Secret named by a DestinationRule and also read for the workload's
// certificates stays watched when the rule goes). Checked on a fake API server's open watches.
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import type { KubeResourceType } from '../../src/kubernetes/collection.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import { CORE_RESOURCES, FakeKubeApi } from '../helpers/fake-kube-api.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const SECRETS: KubeResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true };
const ONE = { namespace: 'shop', fieldSelector: 'metadata.name=api-client' };

let api: FakeKubeApi | undefined;
let watcher: KubeApiWatcher | undefined;
let dir: string | undefined;

afterEach(async () => {
  await watcher?.close();
  await api?.close();
  if (dir) await removeTempDir(dir);
  watcher = undefined;
  api = undefined;
  dir = undefined;
});

it('a collection asked for twice is watched until both users released it; then a new one can be opened', async () => {
  dir = await makeTempDir();
  api = await FakeKubeApi.start({ resources: [...CORE_RESOURCES, { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true }] });
  watcher = await KubeApiWatcher.connect({ kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } });
  const fake = api;
  const first = watcher.collection(SECRETS, ONE);
  expect(watcher.collection(SECRETS, ONE)).toBe(first);
  await first.synced;
  await expect.poll(() => fake.openWatchesOf('secrets')).toEqual(['secrets shop metadata.name=api-client']);

  watcher.release(SECRETS, ONE);
  // Still one user: the watch stays (a later object change still arrives).
  fake.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'api-client', namespace: 'shop' }, data: {} });
  await expect.poll(() => first.items.has('shop/api-client')).toBe(true);
  expect(fake.openWatchesOf('secrets')).toEqual(['secrets shop metadata.name=api-client']);

  watcher.release(SECRETS, ONE);
  await expect.poll(() => fake.openWatchesOf('secrets')).toEqual([]);
  expect(watcher.reports()).toEqual([]);

  const again = watcher.collection(SECRETS, ONE);
  expect(again).not.toBe(first);
  await again.synced;
  expect(again.items.has('shop/api-client')).toBe(true);
});
