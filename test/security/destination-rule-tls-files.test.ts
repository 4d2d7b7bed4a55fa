// DestinationRule `tls` certificate files rotated on disk: a Secret volume's atomic `..data`
// symlink swap (as the kubelet writes it) and a plain rewrite in place. New connections use the
// new pair with no request failing; a bad new pair (key mismatch, expired) is refused and reported
// (mesh event, log line, metric) while the last good pair keeps serving. A real node:https pod
// that requires a client certificate records which one each request came with.
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ClientCredentialRejection, Mesh, MeshLogger } from '../../src/index.js';
import { MESH_LOG_EVENTS } from '../../src/index.js';
import type { IssuedCert } from '../helpers/certs.js';
import { TestCa } from '../helpers/certs.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { OtelHarness } from '../helpers/otel.js';
import { SecretVolume } from '../helpers/secret-volume.js';
import { TestClock } from '../helpers/test-clock.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { TlsPodReply } from '../helpers/tls-pods.js';
import { TlsPod } from '../helpers/tls-pods.js';

const HOST = 'api.example.com';
const RULE = 'DestinationRule shop/api spec.trafficPolicy.tls';

let dir: string;
let ca: TestCa;
let first: IssuedCert;
let second: IssuedCert;
let expired: IssuedCert;
let pod: TlsPod;
let mesh: Mesh | undefined;
let otel: OtelHarness;
let logged: { level: string; obj: Record<string, unknown>; msg: string }[];
let run = 0;

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  first = ca.issue('orders-client', { usage: 'client' });
  second = ca.issue('orders-client-rotated', { usage: 'client' });
  expired = ca.issue('orders-client-expired', { usage: 'client', expired: true });
  pod = await TlsPod.start('127.0.0.3', { cert: ca.issue(HOST, { dns: [HOST] }), clientCa: ca.cert });
});

beforeEach(() => {
  otel = new OtelHarness({ tracing: false });
  logged = [];
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await otel.shutdown();
});

afterAll(async () => {
  await pod?.close();
  await removeTempDir(dir);
});

/** A fresh directory per test, with `tls.crt`, `tls.key` and `ca.crt` in it. */
function certDir(): string {
  const path = join(dir, `certs-${++run}`);
  mkdirSync(path);
  return path;
}

const pair = (cert: IssuedCert, key = cert) => ({ 'tls.crt': cert.cert, 'tls.key': key.key, 'ca.crt': ca.cert });

async function start(files: string, clock?: TestClock): Promise<Mesh> {
  const log = (level: string) => (obj: object, msg: string) => logged.push({ level, obj: obj as Record<string, unknown>, msg });
  const logger: MeshLogger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  mesh = await meshFromYaml(
    `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP, targetPort: ${pod.port} }]
  endpoints: [{ address: ${pod.address} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy:
    tls: { mode: MUTUAL, caCertificates: ${files}/ca.crt, clientCertificate: ${files}/tls.crt, privateKey: ${files}/tls.key }
`,
    { namespace: 'shop', dns: false, logger, ...(clock ? { clock } : {}) },
  );
  return mesh;
}

/** The client certificate the pod saw; throws when the request failed. */
async function call(): Promise<string | null> {
  const res = await mesh!.request(`http://${HOST}/orders`);
  const text = await res.body.text();
  expect(res.statusCode, text).toBe(200);
  return (JSON.parse(text) as TlsPodReply).client;
}

/**
 * Requests one after another until the pod sees `want`; every one must succeed (a failure
 * throws). Returns the client certificates seen, in order.
 */
async function callUntil(want: string): Promise<(string | null)[]> {
  const seen: (string | null)[] = [];
  for (let i = 0; i < 400; i++) {
    seen.push(await call());
    if (seen.at(-1) === want) return seen;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`the pod never saw ${want}; it saw ${[...new Set(seen)].join(', ')}`);
}

async function rotations(outcome: string): Promise<{ value: number; attributes: Record<string, unknown> }[]> {
  const points = await otel.metric('sidecarless.credential.rotations');
  return points.filter((p) => p.attributes['sidecarless.credential.outcome'] === outcome).map((p) => ({ value: p.value as number, attributes: p.attributes }));
}

describe('DestinationRule tls files rotated on disk', () => {
  it("a Secret volume's ..data swap: the next connections present the new certificate, no request fails", async () => {
    const files = certDir();
    const volume = new SecretVolume(files);
    volume.write(pair(first));
    await start(files);
    expect(await call()).toBe('orders-client');
    volume.write(pair(second));
    const seen = await callUntil('orders-client-rotated');
    // Each request came with one of the two certificates, never without one.
    for (const client of seen) expect(['orders-client', 'orders-client-rotated']).toContain(client);
    expect(await call()).toBe('orders-client-rotated');
    expect(await rotations('accepted')).toEqual([
      { value: 1, attributes: { 'sidecarless.credential.source': RULE, 'sidecarless.credential.outcome': 'accepted', 'sidecarless.credential.problem': '' } },
    ]);
  });

  it('a plain rewrite of the files in place: the same', async () => {
    const files = certDir();
    for (const [name, text] of Object.entries(pair(first))) writeFileSync(join(files, name), text);
    await start(files);
    expect(await call()).toBe('orders-client');
    writeFileSync(join(files, 'tls.key'), second.key);
    writeFileSync(join(files, 'tls.crt'), second.cert);
    await callUntil('orders-client-rotated');
    expect(await call()).toBe('orders-client-rotated');
  });
});

describe('a bad new pair is refused; the last good pair keeps serving', () => {
  it('a key that does not match the certificate: refused, reported as credentialRejected, logged and counted; a good pair afterwards is used', async () => {
    const files = certDir();
    const volume = new SecretVolume(files);
    volume.write(pair(first));
    const m = await start(files);
    expect(await call()).toBe('orders-client');

    const rejected = once(m, 'credentialRejected') as Promise<[ClientCredentialRejection]>;
    volume.write(pair(second, first));
    const [rejection] = await rejected;
    expect(rejection.source).toBe(RULE);
    expect(rejection.kept).toBe(true);
    expect(rejection.error.code).toBe('ERR_MESH_CERTIFICATE');
    expect(rejection.error.problem).toBe('key-mismatch');
    expect(rejection.error.file).toBe(`${files}/tls.key`);
    expect(rejection.error.message).toContain('does not match the certificate');
    expect(await call()).toBe('orders-client');

    const line = logged.find((l) => l.obj.event === 'credential.rejected');
    expect(line).toMatchObject({
      level: 'error',
      obj: { code: 'ERR_MESH_CERTIFICATE', problem: 'key-mismatch', source: RULE, file: `${files}/tls.key`, kept: true },
    });
    expect(line?.msg).toMatch(/^client credentials of DestinationRule shop\/api spec\.trafficPolicy\.tls refused, the last good ones stay: /);
    for (const l of logged) expect(MESH_LOG_EVENTS).toContain(l.obj.event);
    expect(await rotations('rejected')).toEqual([
      {
        value: 1,
        attributes: { 'sidecarless.credential.source': RULE, 'sidecarless.credential.outcome': 'rejected', 'sidecarless.credential.problem': 'key-mismatch' },
      },
    ]);

    volume.write(pair(second));
    await callUntil('orders-client-rotated');
  });

  it('an expired certificate: refused with its expiry date, the last good pair keeps serving', async () => {
    const files = certDir();
    const volume = new SecretVolume(files);
    volume.write(pair(first));
    const m = await start(files);
    expect(await call()).toBe('orders-client');

    const rejected = once(m, 'credentialRejected') as Promise<[ClientCredentialRejection]>;
    volume.write(pair(expired));
    const [rejection] = await rejected;
    expect(rejection.error.problem).toBe('expired');
    expect(rejection.error.file).toBe(`${files}/tls.crt`);
    expect(rejection.error.message).toContain('expired at 2020-01-02T00:00:00.000Z');
    expect(rejection.kept).toBe(true);
    for (let i = 0; i < 5; i++) expect(await call()).toBe('orders-client');
    expect(pod.failedHandshakes).toBe(0);
    expect(await rotations('rejected')).toMatchObject([{ value: 1, attributes: { 'sidecarless.credential.problem': 'expired' } }]);
  });

  it('a certificate not valid yet (clock skew with the issuer): refused, then used once it is valid', async () => {
    // The mesh's wall clock runs an hour behind: the new certificate (valid from five minutes ago) is not valid yet.
    const clock = new TestClock({ wallNow: Date.now() - 3_600_000 });
    const files = certDir();
    const volume = new SecretVolume(files);
    volume.write(pair(ca.issue('orders-client', { usage: 'client', notBefore: new Date(Date.now() - 2 * 3_600_000) })));
    const m = await start(files, clock);
    expect(await call()).toBe('orders-client');

    const rejections: ClientCredentialRejection[] = [];
    m.on('credentialRejected', (r) => rejections.push(r));
    volume.write(pair(second));
    // The change is read after the debounce, on the test's clock.
    await expect
      .poll(() => {
        clock.advance(100);
        return rejections.map((r) => r.error.problem);
      })
      .toEqual(['not-yet-valid']);
    expect(rejections[0]!.error.message).toContain('the client certificate is not valid before');
    expect(await call()).toBe('orders-client');

    // An hour later it is valid: read again by itself, no file change needed.
    clock.advance(3_600_000);
    await callUntil('orders-client-rotated');
  });
});
