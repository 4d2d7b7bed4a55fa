// DestinationRule `tls.credentialName`: the client certificate, key and CA come from a Kubernetes
// Secret read through the API (a fake API server; real certificates; a node:https pod that requires
// a client certificate; a plaintext pod that must never see a request when TLS was asked for).
import { once } from 'node:events';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ClientCredentialRejection, Mesh } from '../../src/index.js';
import { createMesh, TlsCredentialUnavailableError } from '../../src/index.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import type { IssuedCert } from '../helpers/certs.js';
import { TestCa } from '../helpers/certs.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { CORE_RESOURCES, FakeKubeApi, ISTIO_RESOURCES } from '../helpers/fake-kube-api.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { OtelHarness } from '../helpers/otel.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { PlaintextPod, TlsPod } from '../helpers/tls-pods.js';
import { failure } from '../helpers/failure.js';

const HOST = 'api.example.com';
const b64 = (text: string) => Buffer.from(text).toString('base64');

let dir: string;
let ca: TestCa;
let first: IssuedCert;
let second: IssuedCert;
let mutual: TlsPod;
let plain: PlaintextPod;
let api: FakeKubeApi;
let watcher: KubeApiWatcher | undefined;
let mesh: Mesh | undefined;

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  first = ca.issue('orders-client', { usage: 'client' });
  second = ca.issue('orders-client-rotated', { usage: 'client' });
  mutual = await TlsPod.start('127.0.0.3', { cert: ca.issue(HOST, { dns: [HOST] }), clientCa: ca.cert });
  plain = await PlaintextPod.start('127.0.0.6', mutual.port);
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await watcher?.close();
  watcher = undefined;
  await api?.close();
});

afterAll(async () => {
  await Promise.all([mutual, plain].map((p) => p?.close()));
  await removeTempDir(dir);
});

function tlsSecret(name: string, cert: IssuedCert): FakeObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name, namespace: 'shop' },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(cert.cert), 'tls.key': b64(cert.key), 'ca.crt': b64(ca.cert) },
  };
}

function config(endpoint: string, secret = 'api-client', withRule = true): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${mutual.port} }]
  endpoints: [{ address: ${endpoint} }]
${
  withRule
    ? `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: { tls: { mode: MUTUAL, credentialName: ${secret} } }
`
    : ''
}`;
}

async function start(endpoint: string, secrets: FakeObject[], prepare?: (fake: FakeKubeApi) => void, source?: PushSource): Promise<Mesh> {
  api = await FakeKubeApi.start({
    resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES, { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true }],
  });
  for (const secret of secrets) api.create(secret);
  prepare?.(api);
  watcher = await KubeApiWatcher.connect({ kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } });
  mesh = source
    ? await createMesh({ namespace: 'shop', dns: false, kubeWatcher: watcher, sources: [source], watch: false })
    : await meshFromYaml(config(endpoint), { namespace: 'shop', dns: false, kubeWatcher: watcher });
  return mesh;
}

async function call(m: Mesh): Promise<TlsPodReply> {
  const res = await m.request(`http://${HOST}/orders`);
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(200);
  return JSON.parse(text) as TlsPodReply;
}

describe('DestinationRule tls.credentialName: client credentials from a Kubernetes Secret', () => {
  it('MUTUAL presents the certificate of a kubernetes.io/tls Secret and checks the server against its ca.crt', async () => {
    const m = await start(mutual.address, [tlsSecret('api-client', first)]);
    expect(await call(m)).toMatchObject({ pod: '127.0.0.3', sni: HOST, client: 'orders-client' });
  });

  it("reads Istio's generic format, the CA from the <name>-cacert Secret", async () => {
    const m = await start(mutual.address, [
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'api-client', namespace: 'shop' }, data: { cert: b64(first.cert), key: b64(first.key) } },
      { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'api-client-cacert', namespace: 'shop' }, data: { cacert: b64(ca.cert) } },
    ]);
    expect(await call(m)).toMatchObject({ pod: '127.0.0.3', client: 'orders-client' });
  });

  it('a Secret that does not exist fails the request with a coded error naming the rule, the field and the Secret; nothing is sent', async () => {
    const m = await start(plain.address, []);
    const before = plain.requests;
    const error = await failure(m.request(`http://${HOST}/orders`));
    expect(error).toBeInstanceOf(TlsCredentialUnavailableError);
    expect((error as TlsCredentialUnavailableError).code).toBe('ERR_MESH_TLS_CREDENTIAL');
    expect((error as TlsCredentialUnavailableError).path).toBe('spec.trafficPolicy.tls.credentialName');
    expect(error.message).toContain('DestinationRule shop/api');
    expect(error.message).toContain('api-client');
    expect(plain.requests).toBe(before);
    expect(plain.refused).toEqual([]);
  });

  it('a key that does not match the certificate is refused whole: nothing is sent', async () => {
    const bad = tlsSecret('api-client', first);
    const m = await start(plain.address, [{ ...bad, data: { ...(bad.data as Record<string, string>), 'tls.key': b64(second.key) } }]);
    const before = plain.requests;
    const error = await failure(m.request(`http://${HOST}/orders`));
    expect(error).toBeInstanceOf(TlsCredentialUnavailableError);
    expect(plain.requests).toBe(before);
    expect(plain.refused).toEqual([]);
  });

  it('an update with a key that does not match is refused and reported (credentialRejected, sidecarless.credential.rotations); the last good set keeps serving', async () => {
    const otel = new OtelHarness({ tracing: false });
    try {
      const m = await start(mutual.address, [tlsSecret('api-client', first)]);
      expect((await call(m)).client).toBe('orders-client');
      const rejected = once(m, 'credentialRejected') as Promise<[ClientCredentialRejection]>;
      const bad = tlsSecret('api-client', second);
      api.update({ ...bad, data: { ...(bad.data as Record<string, string>), 'tls.key': b64(first.key) } });
      const [rejection] = await rejected;
      expect(rejection).toMatchObject({
        source: 'Secret shop/api-client',
        kept: true,
        error: { code: 'ERR_MESH_CERTIFICATE', problem: 'key-mismatch', file: 'Secret shop/api-client key tls.key' },
      });
      expect((await call(m)).client).toBe('orders-client');
      const points = (await otel.metric('sidecarless.credential.rotations')).map((p) => [
        p.attributes['sidecarless.credential.outcome'],
        p.attributes['sidecarless.credential.problem'],
        p.value,
      ]);
      expect(points).toEqual([
        ['accepted', '', 1],
        ['rejected', 'key-mismatch', 1],
      ]);
    } finally {
      await otel.shutdown();
    }
  });

  it('an updated Secret is used for the connections that follow', async () => {
    const m = await start(mutual.address, [tlsSecret('api-client', first)]);
    expect((await call(m)).client).toBe('orders-client');
    api.update(tlsSecret('api-client', second));
    await expect.poll(async () => (await call(m)).client, { timeout: 10_000 }).toBe('orders-client-rotated');
  });
});

describe('DestinationRule tls.credentialName: the API refuses to read the Secret', () => {
  it('a 403 fails the request closed, naming the Secret, its namespace, "forbidden" and the RBAC rule needed; nothing is sent', async () => {
    const m = await start(plain.address, [tlsSecret('api-client', first)], (fake) => fake.forbid('secrets'));
    const rejections: ClientCredentialRejection[] = [];
    m.on('credentialRejected', (r) => rejections.push(r));
    const before = plain.requests;
    const error = await failure(m.request(`http://${HOST}/orders`));
    expect(error).toBeInstanceOf(TlsCredentialUnavailableError);
    expect((error as TlsCredentialUnavailableError).code).toBe('ERR_MESH_TLS_CREDENTIAL');
    expect((error as TlsCredentialUnavailableError).secret).toBe('shop/api-client');
    expect(error.message).toContain('Secret shop/api-client');
    expect(error.message).toContain('forbidden');
    expect(error.message).toMatch(/Role .*namespace shop.*get, list and watch.*secrets/);
    expect(plain.requests).toBe(before);
    expect(plain.refused).toEqual([]);
    // Reported once, with nothing kept: there was no good set before.
    expect(rejections.map((r) => [r.source, r.error.problem, r.kept])).toEqual([['Secret shop/api-client', 'unreadable', false]]);
    expect(rejections[0]!.error.message).toContain('forbidden');
  });

  it('a Role that allows only the Secret itself: its ca.crt is enough; without a CA in it the forbidden <name>-cacert fails closed, naming that Secret', async () => {
    const m = await start(mutual.address, [tlsSecret('api-client', first)], (fake) => fake.forbid('secrets/api-client-cacert'));
    expect((await call(m)).client).toBe('orders-client');
    await m.close();
    await watcher?.close();
    await api.close();

    const generic: FakeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'api-client', namespace: 'shop' },
      data: { cert: b64(first.cert), key: b64(first.key) },
    };
    const companion: FakeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'api-client-cacert', namespace: 'shop' },
      data: { cacert: b64(ca.cert) },
    };
    const again = await start(plain.address, [generic, companion], (fake) => fake.forbid('secrets/api-client-cacert'));
    const before = plain.requests;
    const error = await failure(again.request(`http://${HOST}/orders`));
    expect(error).toBeInstanceOf(TlsCredentialUnavailableError);
    expect(error.message).toContain('Secret shop/api-client-cacert: reading it is forbidden by RBAC');
    expect(error.message).toContain('with resourceNames, api-client-cacert among them');
    expect(plain.requests).toBe(before);
  });

  it('once RBAC allows reading the Secret, its credentials are used', async () => {
    const m = await start(mutual.address, [tlsSecret('api-client', first)], (fake) => fake.forbid('secrets'));
    expect((await failure(m.request(`http://${HOST}/orders`))).message).toContain('forbidden');
    api.allow('secrets');
    await expect
      .poll(
        async () =>
          await m.request(`http://${HOST}/orders`).then(
            (r) => r.body.json(),
            (e: Error) => ({ error: e.message }),
          ),
        { timeout: 10_000 },
      )
      .toMatchObject({ pod: '127.0.0.3', client: 'orders-client' });
  });
});

describe('DestinationRule tls.credentialName: Secret watches follow the configuration', () => {
  const watchOf = (name: string) => `secrets shop metadata.name=${name}`;

  it('a Secret the current snapshot no longer names is no longer watched: the API server sees its watches closed', async () => {
    const source = new PushSource(yamlDocs(config(mutual.address)));
    const m = await start(mutual.address, [tlsSecret('api-client', first), tlsSecret('api-client-2', second)], undefined, source);
    expect((await call(m)).client).toBe('orders-client');
    await expect.poll(() => api.openWatchesOf('secrets')).toEqual([watchOf('api-client'), watchOf('api-client-cacert')]);

    // The rule names another Secret: the first one's watches close once that snapshot serves.
    const changed = new Promise((resolve) => m.once('snapshot', resolve));
    source.push(yamlDocs(config(mutual.address, 'api-client-2')));
    await changed;
    expect((await call(m)).client).toBe('orders-client-rotated');
    await expect.poll(() => api.openWatchesOf('secrets')).toEqual([watchOf('api-client-2'), watchOf('api-client-2-cacert')]);

    // The rule is removed: no Secret is watched any more, long before close().
    const removed = new Promise((resolve) => m.once('snapshot', resolve));
    source.push(yamlDocs(config(mutual.address, 'api-client-2', false)));
    await removed;
    await expect.poll(() => api.openWatchesOf('secrets')).toEqual([]);
    expect(watcher!.reports().filter((r) => r.description.includes('Secret'))).toEqual([]);
  });
});
