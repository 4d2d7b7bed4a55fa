// DestinationRule client credentials that are already bad when first read (the mesh starts with
// them): an expired, not-yet-valid or key-mismatched client certificate file, and a
// `credentialName` Secret whose certificate has expired. They are refused when read, as a rotation
// to a bad pair is: requests to the destination fail closed with TlsCredentialUnavailableError
// naming the rule, the field and what is wrong, and nothing reaches the pod (not a handshake); once
// a valid pair appears, requests succeed. A real node:https pod requiring a client certificate.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ClientCredentialRejection, Mesh } from '../../src/index.js';
import { TlsCredentialUnavailableError } from '../../src/index.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import type { IssuedCert } from '../helpers/certs.js';
import { TestCa } from '../helpers/certs.js';
import { CORE_RESOURCES, FakeKubeApi, ISTIO_RESOURCES } from '../helpers/fake-kube-api.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { failure } from '../helpers/failure.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { SecretVolume } from '../helpers/secret-volume.js';
import { TestClock } from '../helpers/test-clock.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { TlsPod } from '../helpers/tls-pods.js';

const HOST = 'api.example.com';
const b64 = (text: string) => Buffer.from(text).toString('base64');

let dir: string;
let ca: TestCa;
let good: IssuedCert;
let other: IssuedCert;
let expired: IssuedCert;
let pod: TlsPod;
let mesh: Mesh | undefined;
let api: FakeKubeApi | undefined;
let watcher: KubeApiWatcher | undefined;
let run = 0;

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  good = ca.issue('orders-client', { usage: 'client' });
  other = ca.issue('orders-client-other', { usage: 'client' });
  expired = ca.issue('orders-client-expired', { usage: 'client', expired: true });
  pod = await TlsPod.start('127.0.0.3', { cert: ca.issue(HOST, { dns: [HOST] }), clientCa: ca.cert });
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await watcher?.close();
  watcher = undefined;
  await api?.close();
  api = undefined;
});

afterAll(async () => {
  await pod?.close();
  await removeTempDir(dir);
});

const pair = (cert: IssuedCert, key = cert) => ({ 'tls.crt': cert.cert, 'tls.key': key.key, 'ca.crt': ca.cert });

function volume(files: Readonly<Record<string, string>>): SecretVolume {
  const path = join(dir, `certs-${++run}`);
  mkdirSync(path);
  const v = new SecretVolume(path);
  v.write(files);
  return v;
}

const serviceEntry = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: PORT }]
  endpoints: [{ address: 127.0.0.3 }]
`;

/** The ServiceEntry and a DestinationRule whose `trafficPolicy` is `policy` (YAML flow text). */
function config(policy: string): string {
  return `${serviceEntry.replace('PORT', String(pod.port))}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: ${policy}
`;
}

const filesTls = (files: string) => `{ mode: MUTUAL, caCertificates: ${files}/ca.crt, clientCertificate: ${files}/tls.crt, privateKey: ${files}/tls.key }`;

async function call(m: Mesh): Promise<string | null> {
  const res = await m.request(`http://${HOST}/orders`);
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(200);
  return (JSON.parse(text) as TlsPodReply).client;
}

/** The request's refusal; the pod saw no handshake at all (nothing was sent, in plaintext or not). */
async function refused(m: Mesh): Promise<TlsCredentialUnavailableError> {
  const handshakes = pod.handshakes + pod.failedHandshakes;
  const replies = pod.replies.length;
  const error = await failure(m.request(`http://${HOST}/orders`));
  expect(error).toBeInstanceOf(TlsCredentialUnavailableError);
  expect(pod.handshakes + pod.failedHandshakes).toBe(handshakes);
  expect(pod.replies.length).toBe(replies);
  return error as TlsCredentialUnavailableError;
}

/** Requests until one succeeds (the rotation is picked up by the watch); returns the client certificate it came with. */
async function succeeds(m: Mesh, clock?: TestClock): Promise<string | null> {
  let last: unknown;
  for (let i = 0; i < 400; i++) {
    try {
      return await call(m);
    } catch (error) {
      if (!(error instanceof TlsCredentialUnavailableError)) throw error;
      last = error;
    }
    clock?.advance(100);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`requests kept failing: ${(last as Error).message}`);
}

describe('DestinationRule tls files that are bad at startup fail closed until a good pair appears', () => {
  it('an expired client certificate: refused naming the rule, the field and the expiry; a rotation to a valid pair is used', async () => {
    const files = volume(pair(expired));
    const rejections: ClientCredentialRejection[] = [];
    mesh = await meshFromYaml(config(`{ tls: ${filesTls(files.dir)} }`), { namespace: 'shop', dns: false });
    mesh.on('credentialRejected', (r) => rejections.push(r));
    const error = await refused(mesh);
    expect(error.code).toBe('ERR_MESH_TLS_CREDENTIAL');
    expect(error.path).toBe('spec.trafficPolicy.tls.clientCertificate');
    expect(error.message).toContain('DestinationRule shop/api');
    expect(error.message).toContain(`${files.dir}/tls.crt`);
    expect(error.message).toContain('expired at 2020-01-02T00:00:00.000Z');
    expect(error.message).not.toContain('Secret');
    // The same again: a refusal is not retried into a success, nor sent.
    await refused(mesh);

    files.write(pair(good));
    expect(await succeeds(mesh)).toBe('orders-client');
    // Reported once (credentialRejected, with nothing kept), not once per request.
    expect(rejections.map((r) => [r.source, r.error.problem, r.error.file, r.kept])).toEqual([
      ['DestinationRule shop/api spec.trafficPolicy.tls', 'expired', `${files.dir}/tls.crt`, false],
    ]);
  });

  it('fixed between the start and the first request (the watch begins with it): the first request reads the files again and succeeds', async () => {
    const files = volume(pair(expired));
    const rejections: ClientCredentialRejection[] = [];
    mesh = await meshFromYaml(config(`{ tls: ${filesTls(files.dir)} }`), { namespace: 'shop', dns: false });
    mesh.on('credentialRejected', (r) => rejections.push(r));
    files.write(pair(good));
    expect(await call(mesh)).toBe('orders-client');
    expect(rejections).toEqual([]);
  });

  it('a key that does not match the certificate: refused naming privateKey; a matching pair afterwards is used', async () => {
    const files = volume(pair(good, other));
    mesh = await meshFromYaml(config(`{ tls: ${filesTls(files.dir)} }`), { namespace: 'shop', dns: false });
    const error = await refused(mesh);
    expect(error.path).toBe('spec.trafficPolicy.tls.privateKey');
    expect(error.message).toContain('does not match the certificate');
    files.write(pair(other));
    expect(await succeeds(mesh)).toBe('orders-client-other');
  });

  it('a certificate not valid yet (the clock behind the issuer): refused with its start date, used once it is valid', async () => {
    const clock = new TestClock({ wallNow: Date.now() - 3_600_000 });
    const files = volume(pair(good));
    mesh = await meshFromYaml(config(`{ tls: ${filesTls(files.dir)} }`), { namespace: 'shop', dns: false, clock });
    const error = await refused(mesh);
    expect(error.message).toContain('is not valid before');
    clock.advance(3_600_000);
    expect(await succeeds(mesh, clock)).toBe('orders-client');
  });

  it("a port's tls: the error names that block's field", async () => {
    const files = volume(pair(expired));
    mesh = await meshFromYaml(config(`{ portLevelSettings: [{ port: { number: 80 }, tls: ${filesTls(files.dir)} }] }`), { namespace: 'shop', dns: false });
    expect((await refused(mesh)).path).toBe('spec.trafficPolicy.portLevelSettings[0].tls.clientCertificate');
  });

  it("a subset's tls: the error names the subset's field; the rotation is used for the subset", async () => {
    const files = volume(pair(good, other));
    const yaml = config(`{ loadBalancer: { simple: ROUND_ROBIN } }
  subsets:
  - name: v1
    labels: { version: v1 }
    trafficPolicy: { tls: ${filesTls(files.dir)} }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  http: [{ route: [{ destination: { host: ${HOST}, subset: v1 } }] }]`).replace('{ address: 127.0.0.3 }', '{ address: 127.0.0.3, labels: { version: v1 } }');
    mesh = await meshFromYaml(yaml, { namespace: 'shop', dns: false });
    const error = await refused(mesh);
    expect(error.path).toBe('spec.subsets[0].trafficPolicy.tls.privateKey');
    expect(error.message).toContain('does not match the certificate');
    files.write(pair(other));
    expect(await succeeds(mesh)).toBe('orders-client-other');
  });
});

describe('a credentialName Secret whose certificate has expired at the first read', () => {
  it('fails closed naming the Secret and the expiry; the renewed Secret is used', async () => {
    const secret = (cert: IssuedCert): FakeObject => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'api-client', namespace: 'shop' },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(cert.cert), 'tls.key': b64(cert.key), 'ca.crt': b64(ca.cert) },
    });
    api = await FakeKubeApi.start({
      resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES, { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true }],
    });
    api.create(secret(expired));
    watcher = await KubeApiWatcher.connect({ kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } });
    mesh = await meshFromYaml(config('{ tls: { mode: MUTUAL, credentialName: api-client } }'), { namespace: 'shop', dns: false, kubeWatcher: watcher });
    const error = await refused(mesh);
    expect(error.path).toBe('spec.trafficPolicy.tls.credentialName');
    expect(error.secret).toBe('shop/api-client');
    expect(error.message).toContain('Secret shop/api-client key tls.crt');
    expect(error.message).toContain('expired at 2020-01-02T00:00:00.000Z');
    api.update(secret(good));
    expect(await succeeds(mesh)).toBe('orders-client');
  });
});
