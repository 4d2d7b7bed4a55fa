// gRPC over TLS and mTLS from the mesh: DestinationRule SIMPLE and MUTUAL (files from a test CA),
// ISTIO_MUTUAL and auto mTLS with the workload's certificates (the development CA, rotated in
// memory), against real grpc-js servers with TLS on loopback "pods" that record each ClientHello
// and the client certificate they verified; and a server with the mesh's interceptor that
// authorizes by the caller's mTLS principal.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CallCredentials, Channel, credentials, Metadata, status } from '@grpc/grpc-js';
import type { ServerCredentials } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh, MeshOptions } from '../../src/index.js';
import type { Snapshot } from '../../src/inspect/public.js';
import { createMesh } from '../../src/index.js';
import { MeshChannelCredentials, meshGrpcOptions, meshServerCredentials, meshServerInterceptor } from '../../src/grpc/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import type { IssuedCert } from '../helpers/certs.js';
import { TestCa } from '../helpers/certs.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { CORE_RESOURCES, FakeKubeApi, ISTIO_RESOURCES } from '../helpers/fake-kube-api.js';
import { callEcho, EchoClient, GrpcPods, RecordingServerCredentials } from '../helpers/grpc-pods.js';
import type { Outcome } from '../helpers/grpc-pods.js';
import { MemoryCertificateSource } from '../helpers/memory-certificates.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';

const HOST = 'reviews.shop.svc.cluster.local';
const insecureCredentials = credentials.createInsecure();
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const REVIEWS = 'spiffe://cluster.local/ns/shop/sa/reviews';

const dir = mkdtempSync(join(tmpdir(), 'grpc-tls-'));
const testCa = TestCa.create(dir);
const meshCa = DevCa.create();
const frontend = meshCa.issue({ namespace: 'shop', serviceAccount: 'frontend' });

const cleanups: (() => Promise<void> | void)[] = [];
let meshes: Mesh[] = [];
let clients: EchoClient[] = [];

afterEach(async () => {
  for (const c of clients) c.close();
  clients = [];
  for (const m of meshes) await m.close();
  meshes = [];
});

afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** TLS gRPC pods on `addresses` (one port), each with the credentials made for it. */
async function tlsPods(
  addresses: readonly string[],
  make: (address: string) => RecordingServerCredentials | ServerCredentials,
): Promise<{ pods: GrpcPods; creds: Map<string, RecordingServerCredentials> }> {
  const creds = new Map<string, RecordingServerCredentials>();
  const pods = await GrpcPods.start(addresses, [], (address) => {
    const c = make(address);
    if (c instanceof RecordingServerCredentials) creds.set(address, c);
    return c;
  });
  cleanups.push(() => pods.close());
  return { pods, creds };
}

function meshPod(identity: IssuedCertificate, requireClientCertificate = true): RecordingServerCredentials {
  return new RecordingServerCredentials({ cert: identity.chainPem, key: identity.keyPem, clientRoots: identity.rootPem, requireClientCertificate });
}

/** `reviews` on port 9080 with `endpoints` (`address` or `address label=value`) on `port`. */
function reviewsEntry(port: number, endpoints: readonly string[]): string {
  const list = endpoints.map((e) => {
    const [address, label] = e.split(' ');
    const [k, v] = (label ?? '').split('=');
    return `{ address: ${address}${label ? `, labels: { ${k}: ${v} }` : ''} }`;
  });
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: grpc, protocol: GRPC, targetPort: ${port} }]
  endpoints: [${list.join(', ')}]
`;
}

function rule(tls: string): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: { tls: ${tls} }
`;
}

async function start(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  const mesh = await createMesh({ namespace: 'shop', config: docs(yaml), watch: false, dns: false, ...options });
  meshes.push(mesh);
  return mesh;
}

function client(mesh: Mesh, target = 'mesh:///reviews.shop:9080'): EchoClient {
  const c = new EchoClient(target, credentials.createInsecure(), meshGrpcOptions(mesh));
  clients.push(c);
  return c;
}

function ok(outcome: Outcome): Extract<Outcome, { ok: true }>['reply'] {
  if (!outcome.ok) throw new Error(`expected the call to succeed, got ${outcome.code}: ${outcome.details}`);
  return outcome.reply;
}

function failed(outcome: Outcome): Extract<Outcome, { ok: false }> {
  if (outcome.ok) throw new Error(`expected the call to fail, it reached ${outcome.reply.pod}`);
  return outcome;
}

describe('DestinationRule SIMPLE and MUTUAL to TLS gRPC servers', () => {
  const server = testCa.issue('reviews', { dns: ['reviews.shop', 'reviews.example.com'] });
  const clientCert = testCa.issue('frontend-client', { usage: 'client' });
  let simple: { pods: GrpcPods; creds: Map<string, RecordingServerCredentials> };
  let mutual: { pods: GrpcPods; creds: Map<string, RecordingServerCredentials> };
  let plain: GrpcPods;

  beforeAll(async () => {
    simple = await tlsPods(['127.0.0.2'], () => new RecordingServerCredentials({ cert: server.cert, key: server.key }));
    mutual = await tlsPods(
      ['127.0.0.3'],
      () => new RecordingServerCredentials({ cert: server.cert, key: server.key, clientRoots: testCa.cert, requireClientCertificate: true }),
    );
    plain = await GrpcPods.start(['127.0.0.4']);
    cleanups.push(() => plain.close());
  });

  it('SIMPLE with caCertificates: TLS verified against the CA, the written host as SNI, h2 by ALPN', async () => {
    const mesh = await start(reviewsEntry(simple.pods.port, ['127.0.0.2']) + rule(`{ mode: SIMPLE, caCertificates: ${testCa.certPath} }`));
    const reply = ok(await callEcho(client(mesh)));
    expect(reply.pod).toBe('127.0.0.2');
    expect(reply.peer).toBeNull();
    expect(simple.creds.get('127.0.0.2')!.hellos.at(-1)).toEqual({ servername: 'reviews.shop', alpn: ['h2'] });
  });

  it("SIMPLE with the rule's sni: that name is sent and verified", async () => {
    const mesh = await start(
      reviewsEntry(simple.pods.port, ['127.0.0.2']) + rule(`{ mode: SIMPLE, caCertificates: ${testCa.certPath}, sni: reviews.example.com }`),
    );
    ok(await callEcho(client(mesh)));
    expect(simple.creds.get('127.0.0.2')!.hellos.at(-1)?.servername).toBe('reviews.example.com');
  });

  it('SIMPLE to a server whose certificate does not name the host is refused with a TLS error, nothing sent', async () => {
    const mesh = await start(
      reviewsEntry(simple.pods.port, ['127.0.0.2']) + rule(`{ mode: SIMPLE, caCertificates: ${testCa.certPath}, sni: ratings.example.com }`),
    );
    const before = simple.pods.received.length;
    const outcome = failed(await callEcho(client(mesh)));
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toMatch(/^upstream connect error: 127\.0\.0\.2:\d+: ERR_MESH_UPSTREAM_TLS: .*TLS error: ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(outcome.details).toContain("ratings.example.com. is not in the cert's altnames: DNS:reviews.shop, DNS:reviews.example.com");
    expect(simple.pods.received.length).toBe(before);
  });

  it('SIMPLE to a plaintext pod fails; the call is never sent in plaintext', async () => {
    const mesh = await start(reviewsEntry(plain.port, ['127.0.0.4']) + rule(`{ mode: SIMPLE, caCertificates: ${testCa.certPath} }`));
    const outcome = failed(await callEcho(client(mesh)));
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toMatch(/^upstream connect error: 127\.0\.0\.4:\d+: ERR_MESH_UPSTREAM_TLS: .*TLS error: ERR_SSL_WRONG_VERSION_NUMBER/);
    expect(plain.received).toEqual([]);
  });

  it('MUTUAL: the client certificate of the rule is presented to a server that requires one', async () => {
    const mesh = await start(
      reviewsEntry(mutual.pods.port, ['127.0.0.3']) +
        rule(`{ mode: MUTUAL, caCertificates: ${testCa.certPath}, clientCertificate: ${clientCert.certPath}, privateKey: ${clientCert.keyPath} }`),
    );
    const reply = ok(await callEcho(client(mesh)));
    expect(reply).toMatchObject({ pod: '127.0.0.3', peer: 'frontend-client' });
  });

  it('SIMPLE (no client certificate) to a server that requires one fails with UNAVAILABLE, the handler never runs', async () => {
    const mesh = await start(reviewsEntry(mutual.pods.port, ['127.0.0.3']) + rule(`{ mode: SIMPLE, caCertificates: ${testCa.certPath} }`));
    const before = mutual.pods.received.length;
    const outcome = failed(await callEcho(client(mesh)));
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toMatch(/^upstream connect error: 127\.0\.0\.3:\d+: .*certificate required/);
    expect(mutual.pods.received.length).toBe(before);
  });

  it('call credentials composed with MeshChannelCredentials go on every call, over the TLS the mesh chose', async () => {
    const mesh = await start(reviewsEntry(simple.pods.port, ['127.0.0.2']) + rule(`{ mode: SIMPLE, caCertificates: ${testCa.certPath} }`));
    const token = CallCredentials.createFromMetadataGenerator((_options, callback) => {
      const metadata = new Metadata();
      metadata.set('authorization', 'Bearer t0ken');
      callback(null, metadata);
    });
    const c = new EchoClient('mesh:///reviews.shop:9080', new MeshChannelCredentials().compose(token), meshGrpcOptions(mesh));
    clients.push(c);
    const reply = ok(await callEcho(c));
    expect(reply.pod).toBe('127.0.0.2');
    expect(reply.metadata['authorization']).toBe('Bearer t0ken');
  });

  it('a channel factory of its own is refused: its credentials would skip the TLS the mesh asks for', async () => {
    const mesh = await start(reviewsEntry(simple.pods.port, ['127.0.0.2']) + rule(`{ mode: SIMPLE, caCertificates: ${testCa.certPath} }`));
    const options = {
      ...meshGrpcOptions(mesh),
      channelFactoryOverride: (address: string, creds: typeof insecureCredentials, o: object) => new Channel(address, creds, o),
    };
    expect(() => new EchoClient('mesh:///reviews.shop:9080', insecureCredentials, options)).toThrow(
      /was not made by meshGrpcOptions\(mesh\)'s channel factory/,
    );
  });

  it('TLS credentials of the client itself are refused: the mesh chooses the transport', async () => {
    const mesh = await start(reviewsEntry(simple.pods.port, ['127.0.0.2']));
    expect(() => new EchoClient('mesh:///reviews.shop:9080', credentials.createSsl(), meshGrpcOptions(mesh))).toThrow(
      /ERR_MESH_GRPC_TARGET|comes from the mesh/,
    );
  });
});

describe('DestinationRule tls.credentialName: the client certificate from a Kubernetes Secret', () => {
  const b64 = (text: string): string => Buffer.from(text).toString('base64');
  const server = testCa.issue('reviews-secret', { dns: ['reviews.shop'] });
  const first = testCa.issue('secret-client', { usage: 'client' });
  const second = testCa.issue('secret-client-rotated', { usage: 'client' });
  let mutual: { pods: GrpcPods };
  let api: FakeKubeApi | undefined;
  let watcher: KubeApiWatcher | undefined;

  beforeAll(async () => {
    mutual = await tlsPods(
      ['127.0.0.10'],
      () => new RecordingServerCredentials({ cert: server.cert, key: server.key, clientRoots: testCa.cert, requireClientCertificate: true }),
    );
  });

  afterEach(async () => {
    for (const m of meshes) await m.close();
    meshes = [];
    await watcher?.close();
    watcher = undefined;
    await api?.close();
    api = undefined;
  });

  const secret = (cert: IssuedCert): FakeObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'reviews-client', namespace: 'shop' },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(cert.cert), 'tls.key': b64(cert.key), 'ca.crt': b64(testCa.cert) },
  });

  async function startWithApi(secrets: FakeObject[]): Promise<Mesh> {
    api = await FakeKubeApi.start({
      resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES, { group: '', versions: ['v1'], plural: 'secrets', kind: 'Secret', namespaced: true }],
    });
    for (const s of secrets) api.create(s);
    watcher = await KubeApiWatcher.connect({ kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } });
    return start(reviewsEntry(mutual.pods.port, ['127.0.0.10']) + rule('{ mode: MUTUAL, credentialName: reviews-client }'), { kubeWatcher: watcher });
  }

  it("presents the Secret's certificate, and an updated Secret's on the calls that follow", async () => {
    const mesh = await startWithApi([secret(first)]);
    const reviewsClient = client(mesh);
    expect(ok(await callEcho(reviewsClient))).toMatchObject({ pod: '127.0.0.10', peer: 'secret-client' });
    api!.update(secret(second));
    await expect.poll(async () => ok(await callEcho(reviewsClient)).peer, { timeout: 10_000 }).toBe('secret-client-rotated');
  });

  it('a Secret that does not exist fails the call with ERR_MESH_TLS_CREDENTIAL naming it; nothing is sent', async () => {
    const mesh = await startWithApi([]);
    const before = mutual.pods.received.length;
    const outcome = failed(await callEcho(client(mesh)));
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toMatch(/^ERR_MESH_TLS_CREDENTIAL: .*DestinationRule shop\/reviews.*reviews-client/);
    expect(outcome.metadata.get('x-sidecarless-error-code')).toEqual(['ERR_MESH_TLS_CREDENTIAL']);
    expect(mutual.pods.received.length).toBe(before);
  });
});

describe('mesh mTLS (ISTIO_MUTUAL, auto mTLS) with the workload certificates', () => {
  let reviews: { pods: GrpcPods; creds: Map<string, RecordingServerCredentials> };
  let plain: GrpcPods;

  beforeAll(async () => {
    reviews = await tlsPods(['127.0.0.5', '127.0.0.6'], (address) =>
      meshPod(meshCa.issue({ namespace: 'shop', serviceAccount: address === '127.0.0.5' ? 'reviews' : 'ratings' })),
    );
    plain = await GrpcPods.start(['127.0.0.7'], [], undefined);
    cleanups.push(() => plain.close());
  });

  const withCertificates = (source = new MemoryCertificateSource(frontend)): Omit<MeshOptions, 'config'> => ({ certificates: { source, debounceMs: 0 } });

  it("ISTIO_MUTUAL: presents the workload certificate, sends Istio's SNI and ALPN for HTTP/2", async () => {
    const mesh = await start(reviewsEntry(reviews.pods.port, ['127.0.0.5']) + rule('{ mode: ISTIO_MUTUAL }'), withCertificates());
    const reply = ok(await callEcho(client(mesh)));
    expect(reply).toMatchObject({ pod: '127.0.0.5', peer: FRONTEND, peerSerial: frontend.certificate.serialNumber });
    expect(reviews.creds.get('127.0.0.5')!.hellos.at(-1)).toEqual({ servername: `outbound_.9080_._.${HOST}`, alpn: ['istio-h2', 'istio', 'h2'] });
  });

  it('refuses a server of another identity than the rule expects, with a clear error; nothing reaches it', async () => {
    const mesh = await start(
      reviewsEntry(reviews.pods.port, ['127.0.0.6']) + rule(`{ mode: ISTIO_MUTUAL, subjectAltNames: ["${REVIEWS}"] }`),
      withCertificates(),
    );
    const before = reviews.pods.received.length;
    const outcome = failed(await callEcho(client(mesh)));
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toMatch(/^upstream connect error: 127\.0\.0\.6:\d+: ERR_MESH_UPSTREAM_TLS: .*TLS error: ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(outcome.details).toContain(`include none of those expected for this destination [${REVIEWS}]`);
    expect(reviews.pods.received.length).toBe(before);
  });

  it('a handshake refused for the identity is a connect failure: the call is retried on a pod that proves it', async () => {
    const mesh = await start(
      reviewsEntry(reviews.pods.port, ['127.0.0.6', '127.0.0.5']) + rule(`{ mode: ISTIO_MUTUAL, subjectAltNames: ["${REVIEWS}"] }`),
      withCertificates(),
    );
    const reviewsClient = client(mesh);
    const before = reviews.pods.received.filter((r) => r.pod === '127.0.0.6').length;
    const answered: string[] = [];
    for (let i = 0; i < 6; i++) answered.push(ok(await callEcho(reviewsClient)).pod);
    expect(new Set(answered)).toEqual(new Set(['127.0.0.5']));
    expect(reviews.pods.received.filter((r) => r.pod === '127.0.0.6').length).toBe(before);
  });

  it('a DestinationRule change applies to the next call: a connection made under other settings is never reused', async () => {
    const config = (san: string): string => reviewsEntry(reviews.pods.port, ['127.0.0.5']) + rule(`{ mode: ISTIO_MUTUAL, subjectAltNames: ["${san}"] }`);
    const source = new PushSource(yamlDocs(config(REVIEWS)));
    const mesh = await createMesh({
      namespace: 'shop',
      sources: [source],
      dns: false,
      certificates: { source: new MemoryCertificateSource(frontend), debounceMs: 0 },
    });
    meshes.push(mesh);
    const push = async (san: string): Promise<void> => {
      const accepted = new Promise<Snapshot>((resolve) => mesh.once('snapshot', resolve));
      source.push(yamlDocs(config(san)));
      await accepted;
    };
    const reviewsClient = client(mesh);
    expect(ok(await callEcho(reviewsClient)).pod).toBe('127.0.0.5');
    // The open connection proved REVIEWS; the rule now asks for another identity.
    await push('spiffe://cluster.local/ns/shop/sa/details');
    expect(failed(await callEcho(reviewsClient)).details).toContain(
      'include none of those expected for this destination [spiffe://cluster.local/ns/shop/sa/details]',
    );
    await push(REVIEWS);
    expect(ok(await callEcho(reviewsClient)).pod).toBe('127.0.0.5');
  });

  it('without workload certificates ISTIO_MUTUAL fails closed before anything is sent', async () => {
    const mesh = await start(reviewsEntry(reviews.pods.port, ['127.0.0.5']) + rule('{ mode: ISTIO_MUTUAL }'), { certificates: false });
    const before = reviews.pods.received.length;
    const outcome = failed(await callEcho(client(mesh)));
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toMatch(
      /^ERR_MESH_NO_WORKLOAD_CERTIFICATE: mutual TLS to reviews\.shop\.svc\.cluster\.local:9080 \(DestinationRule shop\/reviews spec\.trafficPolicy\.tls\) needs the workload's certificates/,
    );
    expect(outcome.metadata.get('x-sidecarless-error-code')).toEqual(['ERR_MESH_NO_WORKLOAD_CERTIFICATE']);
    expect(reviews.pods.received.length).toBe(before);
  });

  it('auto mTLS: mTLS to the endpoint labelled tlsMode=istio, plaintext to the other, per connection', async () => {
    const mesh = await start(
      `${reviewsEntry(reviews.pods.port, ['127.0.0.5 security.istio.io/tlsMode=istio'])}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: details, namespace: shop }
spec:
  hosts: [details.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: grpc, protocol: GRPC, targetPort: ${plain.port} }]
  endpoints: [{ address: 127.0.0.7 }]
`,
      withCertificates(),
    );
    expect(ok(await callEcho(client(mesh)))).toMatchObject({ pod: '127.0.0.5', peer: FRONTEND });
    expect(ok(await callEcho(client(mesh, 'mesh:///details.shop:9080')))).toMatchObject({ pod: '127.0.0.7', peer: null });
  });

  it('a rotated workload certificate is presented on the next connections', async () => {
    const source = new MemoryCertificateSource(frontend);
    const mesh = await start(reviewsEntry(reviews.pods.port, ['127.0.0.5']) + rule('{ mode: ISTIO_MUTUAL }'), withCertificates(source));
    const reviewsClient = client(mesh);
    expect(ok(await callEcho(reviewsClient)).peerSerial).toBe(frontend.certificate.serialNumber);
    const next = meshCa.issue({ namespace: 'shop', serviceAccount: 'frontend' });
    source.set(next);
    await mesh.certificates!.reload();
    const after = ok(await callEcho(reviewsClient));
    expect(after).toMatchObject({ pod: '127.0.0.5', peer: FRONTEND, peerSerial: next.certificate.serialNumber });
  });
});

/** The serial number of the certificate a TLS server presents now (a new connection). */
async function servedSerial(address: string, port: number, roots: string): Promise<string> {
  const client = meshCa.issue({ namespace: 'shop', serviceAccount: 'probe' });
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: address, port, ca: roots, cert: client.chainPem, key: client.keyPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined },
      () => {
        const serial = socket.getPeerCertificate().serialNumber;
        socket.destroy();
        resolve(serial);
      },
    );
    socket.once('error', reject);
  });
}

describe('a gRPC server with meshServerCredentials and the mesh interceptor', () => {
  it("serves mTLS with the workload certificate and sees the caller's principal: AuthorizationPolicy allows the frontend, denies another workload", async () => {
    const identity = meshCa.issue({ namespace: 'shop', serviceAccount: 'reviews' });
    const server = await start(
      `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: reviews, namespace: shop }
spec:
  selector: { matchLabels: { app: reviews } }
  action: ALLOW
  rules:
  - from: [{ source: { principals: [cluster.local/ns/shop/sa/frontend] } }]
    to: [{ operation: { paths: ["/test.Echo/Who"] } }]
`,
      { labels: { app: 'reviews' }, certificates: { source: new MemoryCertificateSource(identity), debounceMs: 0 } },
    );
    const pods = await GrpcPods.start(['127.0.0.8'], [meshServerInterceptor(server)], () => meshServerCredentials(server));
    cleanups.push(() => pods.close());
    const entry = reviewsEntry(pods.port, ['127.0.0.8']) + rule(`{ mode: ISTIO_MUTUAL, subjectAltNames: ["${REVIEWS}"] }`);
    const fromFrontend = await start(entry, { certificates: { source: new MemoryCertificateSource(frontend), debounceMs: 0 } });
    const intruder = meshCa.issue({ namespace: 'shop', serviceAccount: 'intruder' });
    const fromIntruder = await start(entry, { certificates: { source: new MemoryCertificateSource(intruder), debounceMs: 0 } });

    expect(ok(await callEcho(client(fromFrontend)))).toMatchObject({ pod: '127.0.0.8', peer: FRONTEND });
    const denied = failed(await callEcho(client(fromIntruder)));
    expect(denied.code).toBe(status.PERMISSION_DENIED);
    expect(denied.details).toBe('RBAC: access denied');
    // The policy allows only Who: the same principal is denied Other.
    expect(failed(await callEcho(client(fromFrontend), 'other')).code).toBe(status.PERMISSION_DENIED);
    expect(pods.received.map((r) => r.method)).toEqual(['/test.Echo/Who']);
  });

  it('refuses a caller whose SPIFFE ID is of a trust domain the mesh does not accept, with UNAUTHENTICATED', async () => {
    const server = await start('', {
      labels: { app: 'reviews' },
      certificates: { source: new MemoryCertificateSource(meshCa.issue({ namespace: 'shop', serviceAccount: 'reviews' })), debounceMs: 0 },
    });
    const pods = await GrpcPods.start(['127.0.0.12'], [meshServerInterceptor(server)], () => meshServerCredentials(server));
    cleanups.push(() => pods.close());
    const foreign = meshCa.issue({ trustDomain: 'other.example', namespace: 'shop', serviceAccount: 'frontend' });
    const caller = await start(reviewsEntry(pods.port, ['127.0.0.12']) + rule(`{ mode: ISTIO_MUTUAL, subjectAltNames: ["${REVIEWS}"] }`), {
      trustDomain: 'other.example',
      certificates: { source: new MemoryCertificateSource(foreign), debounceMs: 0 },
    });
    const outcome = failed(await callEcho(client(caller)));
    expect(outcome.code).toBe(status.UNAUTHENTICATED);
    expect(outcome.details).toBe(
      'the client\'s trust domain "other.example" (spiffe://other.example/ns/shop/sa/frontend) is not accepted; accepted: cluster.local',
    );
    expect(pods.received).toEqual([]);
  });

  it('takes a rotated workload certificate for its next handshakes', async () => {
    const first = meshCa.issue({ namespace: 'shop', serviceAccount: 'reviews' });
    const source = new MemoryCertificateSource(first);
    const server = await start('', { certificates: { source, debounceMs: 0 } });
    const pods = await GrpcPods.start(['127.0.0.9'], [meshServerInterceptor(server)], () => meshServerCredentials(server));
    cleanups.push(() => pods.close());
    expect(await servedSerial('127.0.0.9', pods.port, meshCa.rootPem)).toBe(first.certificate.serialNumber);
    const next = meshCa.issue({ namespace: 'shop', serviceAccount: 'reviews' });
    source.set(next);
    await server.certificates!.reload();
    expect(await servedSerial('127.0.0.9', pods.port, meshCa.rootPem)).toBe(next.certificate.serialNumber);
  });

  it('without workload certificates there is no server credential (never a plaintext server instead)', async () => {
    const server = await start('', { certificates: false });
    expect(() => meshServerCredentials(server)).toThrow(
      /^meshServerCredentials\(mesh\): a mutual TLS server needs the workload's certificates, and the mesh has none/,
    );
  });
});
