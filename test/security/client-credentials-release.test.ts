// A credentialName Secret released because the snapshot in force no longer names it stays
// released for requests still running on the replaced snapshot: they keep the credentials they
// held (as Envoy's old cluster keeps its secrets until drained) or, if they never held any, fail
// closed with a clear reason; the Secret's watches are never opened again for them. Checked on
// a fake API server's open watches and on every `collection` call the credentials make.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import type { KubeResourceType, KubeWatcher, KubeWatchOptions } from '../../src/kubernetes/collection.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import { ClientCredentials } from '../../src/security/client-credentials.js';
import { compileClientTls } from '../../src/security/tls-settings.js';
import type { TlsOrigination, TlsUnavailable } from '../../src/security/tls-settings.js';
import type { IssuedCert } from '../helpers/certs.js';
import { TestCa } from '../helpers/certs.js';
import { CORE_RESOURCES, FakeKubeApi } from '../helpers/fake-kube-api.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const b64 = (text: string) => Buffer.from(text).toString('base64');
const watchOf = (name: string) => `secrets shop metadata.name=${name}`;

let dir: string;
let ca: TestCa;
let client: IssuedCert;
let api: FakeKubeApi | undefined;
let watcher: KubeApiWatcher | undefined;
let credentials: ClientCredentials | undefined;

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  client = ca.issue('orders-client', { usage: 'client' });
});

afterEach(async () => {
  credentials?.close();
  credentials = undefined;
  await watcher?.close();
  watcher = undefined;
  await api?.close();
  api = undefined;
});

afterAll(async () => {
  await removeTempDir(dir);
});

function secret(name: string): FakeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'shop' },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(client.cert), 'tls.key': b64(client.key), 'ca.crt': b64(ca.cert) },
  };
}

/** A DestinationRule `tls` block naming `credentialName`, compiled as a snapshot compiles it (each call: another snapshot's). */
function compiled(credentialName: string): TlsOrigination {
  const { tls, problems } = compileClientTls({
    spec: { mode: 'MUTUAL', credentialName },
    resource: { kind: 'DestinationRule', namespace: 'shop', name: 'api' },
    path: 'spec.trafficPolicy.tls',
  });
  expect(problems).toEqual([]);
  if (tls?.kind !== 'originate') throw new Error('expected TLS origination');
  return tls;
}

it('a request on a replaced snapshot keeps the credentials it held or fails closed, and never reopens a released watch', async () => {
  api = await FakeKubeApi.start({ resources: [...CORE_RESOURCES, { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true }] });
  api.create(secret('api-client'));
  api.create(secret('other-client'));
  const fake = api;
  watcher = await KubeApiWatcher.connect({ kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } });
  const real = watcher;
  const opened: string[] = [];
  const counting: KubeWatcher = {
    collection: (type: KubeResourceType, options?: KubeWatchOptions) => {
      opened.push(options?.fieldSelector ?? '');
      return real.collection(type, options);
    },
    release: (type, options) => real.release(type, options),
    close: () => real.close(),
  };
  credentials = new ClientCredentials({ watcher: counting, clock: systemClock, pollIntervalMs: 0 });

  // Snapshot 1 names two Secrets; a request resolves the first (read once, then held).
  const held = compiled('api-client');
  const neverRead = compiled('other-client');
  credentials.retain([held, neverRead]);
  const first = credentials.resolve(held) as TlsUnavailable;
  expect(first.kind).toBe('unavailable');
  await first.pending;
  const before = credentials.resolve(held) as TlsOrigination;
  expect(before.cert).toBe(client.cert);
  await expect.poll(() => fake.openWatchesOf('secrets')).toEqual([watchOf('api-client'), watchOf('api-client-cacert')]);
  expect(opened).toEqual(['metadata.name=api-client', 'metadata.name=api-client-cacert']);

  // Snapshot 2 names neither: the watches close.
  credentials.retain([]);
  await expect.poll(() => fake.openWatchesOf('secrets')).toEqual([]);

  // Requests still running on snapshot 1: the one that held credentials keeps them; the other fails closed.
  const after = credentials.resolve(held);
  expect(after).toMatchObject({ kind: 'originate', cert: client.cert, key: client.key, ca: ca.cert, credential: undefined });
  expect(after).toBe(before);
  const refused = credentials.resolve(neverRead) as TlsUnavailable;
  expect(refused.kind).toBe('unavailable');
  expect(refused.pending).toBeUndefined();
  expect(refused.failure).toMatchObject({ secret: 'shop/other-client', path: 'spec.trafficPolicy.tls.credentialName' });
  expect(refused.failure.reason).toContain('the configuration in force no longer names them');
  // No watch was asked for again: none is open, none is being opened.
  expect(opened).toHaveLength(2);
  expect(real.reports()).toEqual([]);
  expect(fake.openWatchesOf('secrets')).toEqual([]);

  // Snapshot 3 names the Secret again: read and watched anew.
  const again = compiled('api-client');
  credentials.retain([again]);
  const third = credentials.resolve(again) as TlsUnavailable;
  expect(third.kind).toBe('unavailable');
  await third.pending;
  expect(credentials.resolve(again)).toMatchObject({ kind: 'originate', cert: client.cert });
  await expect.poll(() => fake.openWatchesOf('secrets')).toEqual([watchOf('api-client'), watchOf('api-client-cacert')]);
  // A request of snapshot 1 resolves through the live entry again (the Secret is named): nothing more is opened.
  expect(credentials.resolve(held)).toMatchObject({ kind: 'originate', cert: client.cert });
  expect(opened).toHaveLength(4);
});

it('the first snapshot (never passed to retain) is retired as well once another one is in force', async () => {
  api = await FakeKubeApi.start({ resources: [...CORE_RESOURCES, { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true }] });
  api.create(secret('api-client'));
  const fake = api;
  watcher = await KubeApiWatcher.connect({ kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } });
  credentials = new ClientCredentials({ watcher, clock: systemClock, pollIntervalMs: 0 });
  const tls = compiled('api-client');
  await (credentials.resolve(tls) as TlsUnavailable).pending;
  expect(credentials.resolve(tls)).toMatchObject({ kind: 'originate', cert: client.cert });
  credentials.retain([]);
  await expect.poll(() => fake.openWatchesOf('secrets')).toEqual([]);
  expect(credentials.resolve(tls)).toMatchObject({ kind: 'originate', cert: client.cert });
  expect(watcher.reports()).toEqual([]);
});
