// DestinationRule `tls.mode: ISTIO_MUTUAL`: the mesh speaks mutual TLS with the workload's own
// certificates, as an Istio sidecar does. Real certificates from the development CA, real TLS
// "pods" on loopback addresses that stand where Istio sidecars would (they require a client
// certificate and record every ClientHello and the certificate each connection presented), and a
// second mesh serving STRICT mTLS in process.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EjectionEvent, Mesh, MeshOptions } from '../../src/index.js';
import { createMesh, peerIdentity, UpstreamTlsError, WorkloadCertificateUnavailableError } from '../../src/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { MemoryCertificateSource } from '../helpers/memory-certificates.js';
import type { MtlsPodReply } from '../helpers/mesh-tls-pod.js';
import { MeshTlsPod } from '../helpers/mesh-tls-pod.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { PlaintextPod } from '../helpers/tls-pods.js';
import { failure } from '../helpers/failure.js';

const HOST = 'reviews.shop.svc.cluster.local';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const REVIEWS = 'spiffe://cluster.local/ns/shop/sa/reviews';

const ca = DevCa.create();
const foreignCa = DevCa.create({ commonName: 'another mesh' });
const frontend = ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });

/** Pods of `reviews` (all on one port, as a ServiceEntry's endpoints). */
let reviews: MeshTlsPod;
let reviews2: MeshTlsPod;
/** Presents the identity of another service account. */
let impostor: MeshTlsPod;
/** Presents `reviews` of another trust domain, signed by the mesh's CA. */
let foreignDomain: MeshTlsPod;
/** Signed by a CA the mesh does not trust. */
let foreignRoot: MeshTlsPod;
let plain: PlaintextPod;
let mesh: Mesh | undefined;
let serverMesh: Mesh | undefined;
let server: Server | undefined;

beforeAll(async () => {
  reviews = await MeshTlsPod.start('127.0.0.2', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }) });
  const port = reviews.port;
  reviews2 = await MeshTlsPod.start('127.0.0.3', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }), port });
  impostor = await MeshTlsPod.start('127.0.0.4', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'ratings' }), port });
  foreignDomain = await MeshTlsPod.start('127.0.0.5', {
    identity: ca.issue({ trustDomain: 'other.example', namespace: 'shop', serviceAccount: 'reviews' }),
    port,
  });
  foreignRoot = await MeshTlsPod.start('127.0.0.6', {
    identity: foreignCa.issue({ namespace: 'shop', serviceAccount: 'reviews' }),
    clientRoots: ca.rootPem,
    port,
  });
  plain = await PlaintextPod.start('127.0.0.7', port);
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    server = undefined;
  }
  await serverMesh?.close();
  serverMesh = undefined;
});

afterAll(async () => {
  await Promise.all([reviews, reviews2, impostor, foreignDomain, foreignRoot, plain].map((p) => p?.close()));
});

interface ServiceOptions {
  /** `address` or `address label=value`. */
  readonly endpoints?: readonly string[];
  readonly protocol?: string;
  readonly subjectAltNames?: readonly string[];
  readonly extra?: string;
  readonly port?: number;
}

/** `reviews` on port 9080, its endpoints on the pods' port. */
function reviewsEntry(options: ServiceOptions = {}): string {
  const list = (options.endpoints ?? [reviews.address]).map((e) => {
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
  ports: [{ number: 9080, name: http, protocol: ${options.protocol ?? 'HTTP'}, targetPort: ${options.port ?? reviews.port} }]
${options.subjectAltNames ? `  subjectAltNames: [${options.subjectAltNames.join(', ')}]\n` : ''}  endpoints: [${list.join(', ')}]
${options.extra ?? ''}`;
}

function istioMutual(tls = '{ mode: ISTIO_MUTUAL }', rest = ''): string {
  return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: { tls: ${tls} }
${rest}`;
}

async function start(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  mesh = await createMesh({
    namespace: 'shop',
    config: docs(yaml),
    watch: false,
    certificates: { source: new MemoryCertificateSource(frontend), debounceMs: 0 },
    ...options,
  });
  return mesh;
}

async function call(m: Mesh, url: string, headers: Record<string, string> = {}): Promise<MtlsPodReply> {
  const res = await m.request(url, { headers });
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as MtlsPodReply;
}

describe("ISTIO_MUTUAL: mutual TLS with the workload's certificates", () => {
  it("presents the workload's certificate and sends the SNI and ALPN an Istio sidecar sends for HTTP/1.1", async () => {
    const m = await start(reviewsEntry() + istioMutual());
    const hellos = reviews.hellos.length;
    const reply = await call(m, `http://${HOST}:9080/ratings`);
    expect(reply).toMatchObject({ pod: reviews.address, client: FRONTEND, httpVersion: '1.1', path: '/ratings' });
    expect(reviews.hellos.slice(hellos)).toEqual([{ servername: `outbound_.9080_._.${HOST}`, alpn: ['istio-http/1.1', 'istio', 'http/1.1'] }]);
    expect(reviews.connections[reply.connection]).toMatchObject({ alpn: 'http/1.1', client: FRONTEND, clientSerial: frontend.certificate.serialNumber });
  });

  it("a subset's SNI names the subset; an HTTP2 port offers istio-h2 and speaks HTTP/2", async () => {
    const m = await start(
      reviewsEntry({ protocol: 'HTTP2', endpoints: [`${reviews.address} version=v1`] }) +
        istioMutual(
          '{ mode: ISTIO_MUTUAL }',
          `  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  http: [{ route: [{ destination: { host: ${HOST}, subset: v1 } }] }]
`,
        ),
    );
    const hellos = reviews.hellos.length;
    const reply = await call(m, `http://${HOST}:9080/`);
    expect(reply).toMatchObject({ client: FRONTEND, httpVersion: '2.0' });
    expect(reviews.hellos.slice(hellos)).toEqual([{ servername: `outbound_.9080_.v1_.${HOST}`, alpn: ['istio-h2', 'istio', 'h2'] }]);
  });

  it("the rule's sni and subjectAltNames replace Istio's", async () => {
    const m = await start(reviewsEntry() + istioMutual(`{ mode: ISTIO_MUTUAL, sni: reviews.internal, subjectAltNames: [${REVIEWS}] }`));
    const hellos = reviews.hellos.length;
    expect(await call(m, `http://${HOST}:9080/`)).toMatchObject({ client: FRONTEND });
    expect(reviews.hellos.slice(hellos).map((h) => h.servername)).toEqual(['reviews.internal']);
  });

  it("an https:// URL gets one TLS session: the mesh's mTLS", async () => {
    const m = await start(reviewsEntry() + istioMutual());
    expect(await call(m, `https://${HOST}:9080/secure`)).toMatchObject({ client: FRONTEND, path: '/secure' });
  });

  it('to a pod that speaks plaintext: only a ClientHello goes out, never the request', async () => {
    const m = await start(reviewsEntry({ endpoints: [plain.address] }) + istioMutual());
    const requests = plain.requests;
    const error = await failure(m.request(`http://${HOST}:9080/`));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect(plain.requests).toBe(requests);
    expect(plain.sawOnlyTls).toBe(true);
  });

  it("a mesh inbound server (STRICT) accepts the call and sees the caller's identity", async () => {
    serverMesh = await createMesh({
      namespace: 'shop',
      watch: false,
      certificates: { source: new MemoryCertificateSource(ca.issue({ namespace: 'shop', serviceAccount: 'reviews' })), debounceMs: 0 },
      config: docs(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: shop }
spec: { mtls: { mode: STRICT } }
`),
    });
    server = serverMesh.createServer((req: IncomingMessage, res: ServerResponse) => {
      const id = peerIdentity(req);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ caller: id?.spiffeId, principal: id?.principal }));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const m = await start(reviewsEntry({ endpoints: ['127.0.0.1'], port }) + istioMutual(`{ mode: ISTIO_MUTUAL, subjectAltNames: [${REVIEWS}] }`));
    const res = await m.request(`http://${HOST}:9080/`);
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ caller: FRONTEND, principal: 'cluster.local/ns/shop/sa/frontend' });
  });

  it('a destination without a ServiceEntry (passed through by name) gets ISTIO_MUTUAL too', async () => {
    const local = await MeshTlsPod.start('127.0.0.1', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'local' }) });
    try {
      const m = await start(`apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: local, namespace: shop }
spec:
  host: localhost
  trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }
`);
      expect(await call(m, `http://localhost:${local.port}/x`)).toMatchObject({ client: FRONTEND, path: '/x' });
      expect(local.hellos[0]).toEqual({
        servername: `outbound_.${local.port}_._.localhost.shop.svc.cluster.local`,
        alpn: ['istio-http/1.1', 'istio', 'http/1.1'],
      });
    } finally {
      await local.close();
    }
  });
});

describe('the server must prove the identity Istio expects', () => {
  const subsetRoute = (
    pods: readonly MeshTlsPod[],
  ): string => `  subsets: [${pods.map((p) => `{ name: ${podName(p)}, labels: { pod: ${podName(p)} } }`).join(', ')}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  http:
${pods
  .map(
    (p) => `  - match: [{ headers: { x-pod: { exact: ${podName(p)} } } }]
    route: [{ destination: { host: ${HOST}, subset: ${podName(p)} } }]
    retries: { attempts: 0 }`,
  )
  .join('\n')}
`;
  const podName = (p: MeshTlsPod): string => `p${p.address.split('.').at(-1)}`;
  const labelled = (pods: readonly MeshTlsPod[]): string[] => pods.map((p) => `${p.address} pod=${podName(p)}`);

  it('the service accounts of the WorkloadEntries: a pod presenting another identity is refused, naming what was expected', async () => {
    const workloadEntry = (p: MeshTlsPod, sa: string): string => `---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: ${podName(p)}, namespace: shop }
spec: { address: ${p.address}, serviceAccount: ${sa}, labels: { app: reviews, pod: ${podName(p)} } }
`;
    const yaml = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP, targetPort: ${reviews.port} }]
  workloadSelector: { labels: { app: reviews } }
${workloadEntry(reviews, 'reviews')}${workloadEntry(impostor, 'reviews')}${istioMutual('{ mode: ISTIO_MUTUAL, }', subsetRoute([reviews, impostor]))}`;
    const m = await start(yaml);
    const ejections: EjectionEvent[] = [];
    m.on('ejection', (e) => ejections.push(e));
    expect(await call(m, `http://${HOST}:9080/`, { 'x-pod': podName(reviews) })).toMatchObject({ client: FRONTEND });
    expect(m.inspect().clusters.find((c) => c.subset === podName(impostor))?.policy.mtls).toEqual({
      mode: 'ISTIO_MUTUAL',
      sni: `outbound_.9080_.${podName(impostor)}_.${HOST}`,
      expectedIdentities: [REVIEWS],
    });
    const served = impostor.replies.length;
    const error = await failure(m.request(`http://${HOST}:9080/`, { headers: { 'x-pod': podName(impostor) } }));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    const tlsError = error as UpstreamTlsError;
    expect(tlsError.code).toBe('ERR_MESH_UPSTREAM_TLS');
    expect(tlsError.reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(tlsError.servername).toBe(`outbound_.9080_.${podName(impostor)}_.${HOST}`);
    expect(error.message).toContain('spiffe://cluster.local/ns/shop/sa/ratings');
    expect(error.message).toContain(`[${REVIEWS}]`);
    expect(error.message).toContain('DestinationRule shop/reviews spec.trafficPolicy.tls');
    expect(impostor.replies.length).toBe(served);
  });

  it("the ServiceEntry's subjectAltNames, and the rule's subjectAltNames over them", async () => {
    const entry = reviewsEntry({ endpoints: labelled([reviews, impostor]), subjectAltNames: [REVIEWS] });
    const m = await start(entry + istioMutual('{ mode: ISTIO_MUTUAL }', subsetRoute([reviews, impostor])));
    expect(await call(m, `http://${HOST}:9080/`, { 'x-pod': podName(reviews) })).toMatchObject({ client: FRONTEND });
    const error = await failure(m.request(`http://${HOST}:9080/`, { headers: { 'x-pod': podName(impostor) } }));
    expect((error as UpstreamTlsError).reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    await m.close();
    const ratings = await start(
      entry + istioMutual('{ mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/shop/sa/ratings] }', subsetRoute([reviews, impostor])),
    );
    expect(await call(ratings, `http://${HOST}:9080/`, { 'x-pod': podName(impostor) })).toMatchObject({ pod: impostor.address });
    expect((await failure(ratings.request(`http://${HOST}:9080/`, { headers: { 'x-pod': podName(reviews) } }))).message).toContain(REVIEWS);
  });

  it("no identity known: any SPIFFE ID of the mesh's trust domain; another trust domain is refused unless it is an alias", async () => {
    const entry =
      reviewsEntry({ endpoints: labelled([reviews, foreignDomain]) }) + istioMutual('{ mode: ISTIO_MUTUAL }', subsetRoute([reviews, foreignDomain]));
    const m = await start(entry);
    expect(await call(m, `http://${HOST}:9080/`, { 'x-pod': podName(reviews) })).toMatchObject({ client: FRONTEND });
    const error = await failure(m.request(`http://${HOST}:9080/`, { headers: { 'x-pod': podName(foreignDomain) } }));
    expect((error as UpstreamTlsError).reason).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    expect(error.message).toContain('spiffe://other.example/ns/shop/sa/reviews is of trust domain "other.example"');
    expect(error.message).toContain('accepted: cluster.local');
    await m.close();
    const aliased = await start(entry, { trustDomainAliases: ['other.example'] });
    expect(await call(aliased, `http://${HOST}:9080/`, { 'x-pod': podName(foreignDomain) })).toMatchObject({ pod: foreignDomain.address, client: FRONTEND });
  });

  it('a trust domain alias also accepts the service accounts in that trust domain', async () => {
    const entry =
      reviewsEntry({ endpoints: labelled([foreignDomain]), subjectAltNames: [REVIEWS] }) + istioMutual('{ mode: ISTIO_MUTUAL }', subsetRoute([foreignDomain]));
    const strict = await start(entry);
    expect((await failure(strict.request(`http://${HOST}:9080/`, { headers: { 'x-pod': podName(foreignDomain) } }))).message).toContain(`[${REVIEWS}]`);
    await strict.close();
    const aliased = await start(entry, { trustDomainAliases: ['other.example'] });
    expect(await call(aliased, `http://${HOST}:9080/`, { 'x-pod': podName(foreignDomain) })).toMatchObject({ pod: foreignDomain.address });
  });

  it("a server certificate from another CA is refused: it does not chain to the mesh's roots", async () => {
    const m = await start(reviewsEntry({ endpoints: [foreignRoot.address] }) + istioMutual());
    const served = foreignRoot.replies.length;
    const error = await failure(m.request(`http://${HOST}:9080/`));
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect(error.message).toContain("does not chain to the mesh's root certificates");
    expect(foreignRoot.replies.length).toBe(served);
  });

  it('the server refuses a client whose certificate it does not trust', async () => {
    // Its own roots trust both CAs (it accepts the server); the server trusts only the mesh's.
    const stranger = foreignCa.issue({ namespace: 'shop', serviceAccount: 'frontend' });
    const m = await start(reviewsEntry() + istioMutual(), {
      certificates: { source: new MemoryCertificateSource(stranger, ca.rootPem + foreignCa.rootPem), debounceMs: 0 },
    });
    const served = reviews.replies.length;
    const failed = reviews.failedHandshakes;
    await failure(m.request(`http://${HOST}:9080/`));
    expect(reviews.replies.length).toBe(served);
    expect(reviews.failedHandshakes).toBeGreaterThan(failed);
  });
});

describe('without workload certificates', () => {
  it('ISTIO_MUTUAL fails with WorkloadCertificateUnavailableError before anything is sent; not retried, no pod ejected', async () => {
    const m = await start(
      reviewsEntry() +
        istioMutual('{ mode: ISTIO_MUTUAL }', '').replace(
          'trafficPolicy: { tls: { mode: ISTIO_MUTUAL } }',
          'trafficPolicy: { tls: { mode: ISTIO_MUTUAL }, outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100 } }',
        ),
      { certificates: false },
    );
    const ejections: EjectionEvent[] = [];
    m.on('ejection', (e) => ejections.push(e));
    const hellos = reviews.hellos.length;
    for (let i = 0; i < 2; i++) {
      const error = await failure(m.request(`http://${HOST}:9080/`));
      expect(error).toBeInstanceOf(WorkloadCertificateUnavailableError);
      expect((error as WorkloadCertificateUnavailableError).code).toBe('ERR_MESH_NO_WORKLOAD_CERTIFICATE');
      expect(error.message).toContain(`mutual TLS to ${HOST}:9080 (DestinationRule shop/reviews spec.trafficPolicy.tls)`);
      expect(error.message).toContain('none are configured');
    }
    const viaFetch = await failure(m.fetch(`http://${HOST}:9080/`));
    expect(viaFetch.cause).toBeInstanceOf(WorkloadCertificateUnavailableError);
    expect(reviews.hellos.length).toBe(hellos);
    expect(ejections).toEqual([]);
  });

  it('certificates that never passed their checks: the error says why', async () => {
    const expired = ca.issue({
      namespace: 'shop',
      serviceAccount: 'frontend',
      notBefore: new Date(Date.now() - 3 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    // A discovered-like source that is not required at start: give it through `source` and let it fail.
    const source = new MemoryCertificateSource(frontend);
    const m = await start(reviewsEntry() + istioMutual(), { certificates: { source, debounceMs: 0 } });
    expect(await call(m, `http://${HOST}:9080/`)).toMatchObject({ client: FRONTEND });
    // A refused rotation keeps the good set in use: requests keep working.
    source.set(expired);
    await m.certificates!.reload();
    expect(m.certificates!.lastError?.problem).toBe('expired');
    expect(await call(m, `http://${HOST}:9080/`)).toMatchObject({ client: FRONTEND });
  });
});

export type { IssuedCertificate };
