// Istio's auto mTLS: where no DestinationRule `tls` applies, calls to a service of the mesh go
// over mutual TLS to the endpoints whose workloads have the mesh's certificates (labelled
// `security.istio.io/tlsMode: istio`, or a WorkloadEntry with a serviceAccount) and in plaintext
// to the others. Real pods: a TLS "pod" standing where an Istio sidecar would (it records every
// handshake) and plaintext-only pods (they count the plaintext requests they parse).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { createMesh, UpstreamTlsError, WorkloadCertificateUnavailableError } from '../../src/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { writeCertificateDirectory } from '../../src/security/dev-ca/write-layout.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { endpoint, namespaceCollections, pod, service, slice } from '../helpers/kube-objects.js';
import { MemoryCertificateSource } from '../helpers/memory-certificates.js';
import { MemoryKubeWatcher } from '../helpers/memory-kube.js';
import type { MtlsPodReply } from '../helpers/mesh-tls-pod.js';
import { MeshTlsPod } from '../helpers/mesh-tls-pod.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { PlaintextPod } from '../helpers/tls-pods.js';

const HOST = 'reviews.shop.svc.cluster.local';
const FRONTEND = 'spiffe://cluster.local/ns/shop/sa/frontend';
const ISTIO = 'security.istio.io/tlsMode=istio';

const ca = DevCa.create();
const frontend = ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });

/** Has the mesh's certificates (a sidecar would stand there). */
let meshPod: MeshTlsPod;
/** Has a certificate of another service account. */
let ratingsPod: MeshTlsPod;
/** Has none: plaintext only. */
let plainPod: PlaintextPod;
let mesh: Mesh | undefined;

beforeAll(async () => {
  meshPod = await MeshTlsPod.start('127.0.0.2', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }) });
  ratingsPod = await MeshTlsPod.start('127.0.0.4', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'ratings' }) });
  plainPod = await PlaintextPod.start('127.0.0.7');
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

afterAll(async () => {
  await Promise.all([meshPod, ratingsPod, plainPod].map((p) => p?.close()));
});

type Pod = MeshTlsPod | PlaintextPod;
const name = (p: Pod): string => `p${p.address.split('.').at(-1)}`;

/**
 * `reviews` on port 9080 with one endpoint per pod (each on its own port), a subset per pod and
 * a route per `x-pod` header; `labels` adds labels (`k=v`) to an endpoint.
 */
function reviewsService(pods: readonly { pod: Pod; labels?: string; extra?: string }[], location = 'MESH_INTERNAL', policy = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  location: ${location}
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints:
${pods
  .map(({ pod: p, labels, extra }) => {
    const all = [`pod: ${name(p)}`, ...(labels ? [labels.replace('=', ': ')] : [])];
    return `  - { address: ${p.address}, ports: { http: ${p.port} }, labels: { ${all.join(', ')} }${extra ? `, ${extra}` : ''} }`;
  })
  .join('\n')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: ${HOST}
${policy}  subsets: [${pods.map(({ pod: p }) => `{ name: ${name(p)}, labels: { pod: ${name(p)} } }`).join(', ')}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  http:
${pods
  .map(
    ({ pod: p }) => `  - match: [{ headers: { x-pod: { exact: ${name(p)} } } }]
    route: [{ destination: { host: ${HOST}, subset: ${name(p)} } }]
    retries: { attempts: 0 }`,
  )
  .join('\n')}
`;
}

async function start(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  mesh = await createMesh({
    namespace: 'shop',
    config: docs(yaml),
    watch: false,
    dns: false,
    random: seededRandom(5),
    certificates: { source: new MemoryCertificateSource(frontend), debounceMs: 0 },
    ...options,
  });
  return mesh;
}

/** The body the pod answered: the TLS pod's JSON reply, or the plaintext pod's `plaintext`. */
async function callPod(m: Mesh, p: Pod, host = HOST): Promise<MtlsPodReply | 'plaintext'> {
  const res = await m.request(`http://${host}:9080/`, { headers: { 'x-pod': name(p) } });
  expect(res.statusCode).toBe(200);
  const text = await res.body.text();
  return text === 'plaintext' ? 'plaintext' : (JSON.parse(text) as MtlsPodReply);
}

describe('auto mTLS (no DestinationRule tls)', () => {
  it('mTLS to endpoints labelled security.istio.io/tlsMode: istio, plaintext to the others, on one service', async () => {
    const m = await start(reviewsService([{ pod: meshPod, labels: ISTIO }, { pod: plainPod }]));
    const hellos = meshPod.hellos.length;
    const plaintext = plainPod.requests;
    expect(await callPod(m, meshPod)).toMatchObject({ pod: meshPod.address, client: FRONTEND });
    expect(meshPod.hellos.slice(hellos)).toEqual([{ servername: `outbound_.9080_.${name(meshPod)}_.${HOST}`, alpn: ['istio-http/1.1', 'istio', 'http/1.1'] }]);
    expect(await callPod(m, plainPod)).toBe('plaintext');
    expect(plainPod.requests).toBe(plaintext + 1);
    // The plaintext pod never saw a handshake.
    expect(plainPod.refused.filter((b) => b[0] === 0x16)).toEqual([]);
    // Inspection says what the mesh does with the cluster.
    const view = m.inspect().clusters.find((c) => c.host === HOST && c.subset === name(meshPod));
    expect(view?.policy.mtls).toEqual({ mode: 'auto', sni: `outbound_.9080_.${name(meshPod)}_.${HOST}`, expectedIdentities: [] });
  });

  it('a WorkloadEntry-style endpoint with a serviceAccount is of the mesh (and proves that identity); tlsMode: disabled says otherwise', async () => {
    const m = await start(
      reviewsService([
        { pod: meshPod, extra: 'serviceAccount: reviews' },
        { pod: ratingsPod, extra: 'serviceAccount: reviews' },
        { pod: plainPod, labels: 'security.istio.io/tlsMode=disabled', extra: 'serviceAccount: reviews' },
      ]),
    );
    expect(await callPod(m, meshPod)).toMatchObject({ client: FRONTEND });
    // The service's workloads run as `reviews`: the pod presenting `ratings` is refused.
    const error = await m.request(`http://${HOST}:9080/`, { headers: { 'x-pod': name(ratingsPod) } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect((error as Error).message).toContain('spiffe://cluster.local/ns/shop/sa/reviews');
    expect(await callPod(m, plainPod)).toBe('plaintext');
  });

  it('a MESH_EXTERNAL service (the ServiceEntry default) gets plaintext, labelled or not', async () => {
    const m = await start(reviewsService([{ pod: plainPod, labels: ISTIO }], 'MESH_EXTERNAL'));
    expect(await callPod(m, plainPod)).toBe('plaintext');
  });

  it("the service namespace's PeerAuthentication DISABLE turns it off; a mesh-wide DISABLE too, unless the namespace says otherwise", async () => {
    const pa = (namespace: string, mode: string): string => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: ${namespace} }
spec: { mtls: { mode: ${mode} } }
`;
    let m = await start(reviewsService([{ pod: plainPod, labels: ISTIO }]) + pa('shop', 'DISABLE'));
    expect(await callPod(m, plainPod)).toBe('plaintext');
    await m.close();
    m = await start(reviewsService([{ pod: plainPod, labels: ISTIO }]) + pa('istio-system', 'DISABLE'));
    expect(await callPod(m, plainPod)).toBe('plaintext');
    await m.close();
    m = await start(reviewsService([{ pod: meshPod, labels: ISTIO }]) + pa('istio-system', 'DISABLE') + pa('shop', 'STRICT'));
    expect(await callPod(m, meshPod)).toMatchObject({ client: FRONTEND });
    await m.close();
    // A namespace UNSET inherits the mesh-wide mode.
    m = await start(reviewsService([{ pod: plainPod, labels: ISTIO }]) + pa('istio-system', 'DISABLE') + pa('shop', 'UNSET'));
    expect(await callPod(m, plainPod)).toBe('plaintext');
  });

  it('a DestinationRule tls wins (DISABLE: plaintext); a rule without tls leaves auto mTLS on', async () => {
    let m = await start(reviewsService([{ pod: plainPod, labels: ISTIO }], 'MESH_INTERNAL', '  trafficPolicy: { tls: { mode: DISABLE } }\n'));
    expect(await callPod(m, plainPod)).toBe('plaintext');
    await m.close();
    m = await start(reviewsService([{ pod: meshPod, labels: ISTIO }], 'MESH_INTERNAL', '  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }\n'));
    expect(await callPod(m, meshPod)).toMatchObject({ client: FRONTEND });
  });

  it('off without workload certificates, and with autoMtls: false', async () => {
    let m = await start(reviewsService([{ pod: plainPod, labels: ISTIO }]), { certificates: false });
    expect(await callPod(m, plainPod)).toBe('plaintext');
    await m.close();
    m = await start(reviewsService([{ pod: plainPod, labels: ISTIO }]), { autoMtls: false });
    expect(await callPod(m, plainPod)).toBe('plaintext');
  });
});

describe('auto mTLS while the certificates are not there yet', () => {
  it('certificates pilot-agent writes after start ($OUTPUT_CERTS): mesh endpoints are refused until then, never sent plaintext; the others keep working', async () => {
    const dir = await makeTempDir();
    const saved = process.env.OUTPUT_CERTS;
    process.env.OUTPUT_CERTS = dir;
    try {
      // No `certificates` option: the mesh finds $OUTPUT_CERTS, still empty.
      const m = await createMesh({
        namespace: 'shop',
        config: docs(reviewsService([{ pod: meshPod, labels: ISTIO }, { pod: plainPod }])),
        watch: false,
        dns: false,
      });
      mesh = m;
      expect(m.certificates?.current).toBeUndefined();
      const hellos = meshPod.hellos.length;
      const error = await m.request(`http://${HOST}:9080/`, { headers: { 'x-pod': name(meshPod) } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(WorkloadCertificateUnavailableError);
      expect((error as Error).message).toContain('auto mTLS');
      expect((error as Error).message).toContain('none passed their checks');
      expect(meshPod.hellos.length).toBe(hellos);
      expect(await callPod(m, plainPod)).toBe('plaintext');
      // The agent writes the workload's certificates: from now on, mTLS.
      await writeCertificateDirectory(dir, 'istio', frontend);
      await m.certificates!.reload();
      expect(await callPod(m, meshPod)).toMatchObject({ client: FRONTEND });
    } finally {
      if (saved === undefined) delete process.env.OUTPUT_CERTS;
      else process.env.OUTPUT_CERTS = saved;
      await mesh?.close();
      mesh = undefined;
      await removeTempDir(dir);
    }
  });
});

describe('auto mTLS for Kubernetes services', () => {
  const RULE = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets: [{ name: r1, labels: { name: r-1 } }, { name: r2, labels: { name: r-2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { x-pod: { exact: r1 } } }]
    route: [{ destination: { host: reviews, subset: r1 } }]
    retries: { attempts: 0 }
  - route: [{ destination: { host: reviews, subset: r2 } }]
    retries: { attempts: 0 }
`;

  async function kubeMesh(first: Pod, second: Pod, annotations: Record<string, string> = {}): Promise<{ m: Mesh; watcher: MemoryKubeWatcher }> {
    const watcher = new MemoryKubeWatcher();
    const m = await start(RULE, { kubeWatcher: watcher });
    const { slices, services, pods } = namespaceCollections(watcher, 'shop');
    const svc = service('shop', 'reviews', [{ name: 'http', port: 9080 }]);
    services.upsert({ ...svc, metadata: { ...svc.metadata, annotations } });
    pods.upsert(pod('shop', 'r-1', { app: 'reviews', name: 'r-1', 'security.istio.io/tlsMode': 'istio' }), pod('shop', 'r-2', { app: 'reviews', name: 'r-2' }));
    slices.upsert(
      slice('shop', 'reviews-a', 'reviews', [{ name: 'http', port: first.port }], [endpoint(first.address, 'r-1')]),
      slice('shop', 'reviews-b', 'reviews', [{ name: 'http', port: second.port }], [endpoint(second.address, 'r-2')]),
    );
    return { m, watcher };
  }

  const get = async (m: Mesh, pod: 'r1' | 'r2'): Promise<MtlsPodReply | 'plaintext'> => {
    const res = await m.request('http://reviews:9080/', { headers: { 'x-pod': pod } });
    const text = await res.body.text();
    return text === 'plaintext' ? 'plaintext' : (JSON.parse(text) as MtlsPodReply);
  };

  it("the pod's tlsMode label decides: an injected pod gets mTLS with Istio's SNI, the other plaintext", async () => {
    const { m } = await kubeMesh(meshPod, plainPod);
    const hellos = meshPod.hellos.length;
    expect(await get(m, 'r1')).toMatchObject({ pod: meshPod.address, client: FRONTEND });
    expect(meshPod.hellos.slice(hellos).map((h) => h.servername)).toEqual([`outbound_.9080_.r1_.${HOST}`]);
    expect(await get(m, 'r2')).toBe('plaintext');
  });

  it('a pod that gains the label is spoken to with mTLS from the next connection on', async () => {
    const { m, watcher } = await kubeMesh(meshPod, ratingsPod);
    // r-2 is not (yet) of the mesh: plaintext to a TLS pod fails the attempt.
    const before = await m.request('http://reviews:9080/', { headers: { 'x-pod': 'r2' } }).then(
      (r) => r.statusCode,
      () => 'failed',
    );
    expect(before).not.toBe(200);
    namespaceCollections(watcher, 'shop').pods.upsert(pod('shop', 'r-2', { app: 'reviews', name: 'r-2', 'security.istio.io/tlsMode': 'istio' }));
    expect(await get(m, 'r2')).toMatchObject({ client: FRONTEND });
  });

  it("the Service's alpha.istio.io/kubernetes-serviceaccounts annotation names the identities to expect", async () => {
    const { m, watcher } = await kubeMesh(meshPod, ratingsPod, { 'alpha.istio.io/kubernetes-serviceaccounts': 'reviews' });
    namespaceCollections(watcher, 'shop').pods.upsert(pod('shop', 'r-2', { app: 'reviews', name: 'r-2', 'security.istio.io/tlsMode': 'istio' }));
    expect(await get(m, 'r1')).toMatchObject({ client: FRONTEND });
    // r-2 serves as `ratings`, not as one of the Service's accounts: refused.
    const served = ratingsPod.replies.length;
    const error = await m.request('http://reviews:9080/', { headers: { 'x-pod': 'r2' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UpstreamTlsError);
    expect((error as Error).message).toContain('[spiffe://cluster.local/ns/shop/sa/reviews]');
    expect(ratingsPod.replies.length).toBe(served);
  });
});
