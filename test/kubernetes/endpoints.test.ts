import { createServer as createH2cServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { countPods, get } from '../helpers/dns-mesh.js';
import { endpoint, namespaceCollections, node, NOT_READY, pod, service, slice, TERMINATING } from '../helpers/kube-objects.js';
import { MemoryKubeWatcher } from '../helpers/memory-kube.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';

// Endpoints come from an in-memory KubeWatcher (swap in the reflector over the fake API server
// and the same assertions hold); the pods are real servers on loopback addresses.
let pods: Pods;
let other: Pods;
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  other = await Pods.start(['127.0.0.2', '127.0.0.3']);
});
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
});
afterAll(async () => {
  await pods.close();
  await other.close();
});

async function kubeMesh(yaml = '', options: Omit<MeshOptions, 'config'> = {}): Promise<{ mesh: Mesh; watcher: MemoryKubeWatcher }> {
  const watcher = new MemoryKubeWatcher();
  const mesh = await meshFromYaml(yaml, { namespace: 'shop', dns: false, random: seededRandom(11), kubeWatcher: watcher, ...options });
  meshes.push(mesh);
  return { mesh, watcher };
}

const HTTP = [{ name: 'http', port: 9080, targetPort: 'web' }];

describe('Kubernetes endpoints from EndpointSlices', () => {
  it('merges the endpoints of every slice of a service', async () => {
    const { mesh, watcher } = await kubeMesh();
    const { slices, services } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'reviews', HTTP));
    slices.upsert(
      slice('shop', 'reviews-a', 'reviews', [{ name: 'http', port: pods.port }], [endpoint('127.0.0.2', 'r-1'), endpoint('127.0.0.3', 'r-2')]),
      slice('shop', 'reviews-b', 'reviews', [{ name: 'http', port: pods.port }], [endpoint('127.0.0.4', 'r-3')]),
      // Another service's slice in the same namespace is not mixed in.
      slice('shop', 'ratings-a', 'ratings', [{ name: 'http', port: pods.port }], [endpoint('127.0.0.5', 'x-1')]),
    );
    for (const url of ['http://reviews:9080/', 'http://reviews.shop:9080/', 'http://reviews.shop.svc.cluster.local:9080/']) {
      const counts = await countPods(mesh, url, 300);
      expect([...counts.keys()].sort(), url).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    }
    // A slice that goes away takes its endpoints with it; the others stay.
    slices.delete('shop/reviews-a');
    const after = await countPods(mesh, 'http://reviews:9080/', 20);
    expect([...after.keys()]).toEqual(['127.0.0.4']);
  }, 60_000);

  it('maps the service port the caller used to the slice port of the same name', async () => {
    const { mesh, watcher } = await kubeMesh();
    const { slices, services } = namespaceCollections(watcher, 'shop');
    services.upsert(
      service('shop', 'reviews', [
        { name: 'http', port: 9080, targetPort: 'web' },
        { name: 'admin', port: 9090, targetPort: 8081 },
      ]),
    );
    // Slices list their ports in any order; the numbers are the pods' (`web` resolved per pod).
    slices.upsert(
      slice(
        'shop',
        'reviews-a',
        'reviews',
        [
          { name: 'admin', port: other.port },
          { name: 'http', port: pods.port },
        ],
        [endpoint('127.0.0.2', 'r-1')],
      ),
      slice(
        'shop',
        'reviews-b',
        'reviews',
        [
          { name: 'admin', port: other.port },
          { name: 'http', port: other.port },
        ],
        [endpoint('127.0.0.3', 'r-2')],
      ),
    );
    const seenHttp = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const res = await mesh.request('http://reviews:9080/x');
      expect(res.statusCode).toBe(200);
      const body = JSON.parse(await res.body.text()) as { pod: string; host: string };
      // The Host header stays the service name, as a sidecar keeps it.
      expect(body.host).toBe('reviews:9080');
      seenHttp.add(body.pod);
    }
    expect([...seenHttp].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    const admin = await countPods(mesh, 'http://reviews:9090/', 50);
    expect([...admin.keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    const wrong = await get(mesh, 'http://reviews.shop:9999/');
    expect(wrong.status).toBe(503);
    expect(wrong.text).toContain('Service shop/reviews has no port 9999 (it has 9080, 9090)');
  }, 60_000);

  it('serves a service without selector (manual slices) and an unnamed single port', async () => {
    const { mesh, watcher } = await kubeMesh();
    const { slices, services } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'legacy', [{ port: 80 }], true));
    slices.upsert(slice('shop', 'legacy-1', 'legacy', [{ port: pods.port }], [{ addresses: ['127.0.0.5'] }]));
    const { status, reply } = await get(mesh, 'http://legacy/');
    expect(status).toBe(200);
    expect(reply?.pod).toBe('127.0.0.5');
  });

  it('opens a namespace when a host of it is first called; the first requests wait for its list', async () => {
    const { mesh, watcher } = await kubeMesh();
    expect(watcher.opened.some((k) => k.endsWith('|payments'))).toBe(false);
    const { slices, services, pods: podMeta } = namespaceCollections(watcher, 'payments');
    // `name.ns.svc` (or `name.ns` when the configuration knows the namespace), as for DNS.
    const pending = get(mesh, 'http://billing.payments.svc:9080/');
    await vi.waitFor(() => expect(watcher.opened).toContain('endpointslices|payments'), { timeout: 10_000 });
    expect(watcher.opened).toContain('services|payments');
    expect(watcher.opened).toContain('pods|payments');
    services.sync([service('payments', 'billing', HTTP)]);
    podMeta.sync([]);
    slices.sync([slice('payments', 'billing-1', 'billing', [{ name: 'http', port: pods.port }], [endpoint('127.0.0.4', 'b-1')])]);
    const { status, reply } = await pending;
    expect(status).toBe(200);
    expect(reply?.pod).toBe('127.0.0.4');
  });

  it('answers 503 "no healthy upstream" when scaled to zero, and serves again when scaled back', async () => {
    const { mesh, watcher } = await kubeMesh();
    const { slices, services } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'reviews', HTTP));
    const ports = [{ name: 'http', port: pods.port }];
    slices.upsert(slice('shop', 'reviews-a', 'reviews', ports, [endpoint('127.0.0.2', 'r-1'), endpoint('127.0.0.3', 'r-2')]));
    expect((await get(mesh, 'http://reviews:9080/')).status).toBe(200);

    slices.upsert(slice('shop', 'reviews-a', 'reviews', ports, []));
    const empty = await get(mesh, 'http://reviews:9080/');
    expect(empty.status).toBe(503);
    expect(empty.text).toMatch(/^no healthy upstream/);
    expect(empty.text).toContain('reviews.shop.svc.cluster.local');

    // Pods created but not ready yet: still none.
    slices.upsert(slice('shop', 'reviews-a', 'reviews', ports, [endpoint('127.0.0.4', 'r-3', { conditions: NOT_READY })]));
    const notReady = await get(mesh, 'http://reviews:9080/');
    expect(notReady.status).toBe(503);
    expect(notReady.text).toContain('1 endpoint(s) not ready or terminating');

    slices.upsert(slice('shop', 'reviews-a', 'reviews', ports, [endpoint('127.0.0.4', 'r-3')]));
    const back = await countPods(mesh, 'http://reviews:9080/', 10);
    expect([...back.keys()]).toEqual(['127.0.0.4']);

    // A Service that is deleted is gone too.
    services.delete('shop/reviews');
    const gone = await get(mesh, 'http://reviews.shop:9080/');
    expect(gone.status).toBe(503);
    expect(gone.text).toContain('no Service reviews in namespace shop');
  });

  it("moves traffic between subsets when a pod's labels change", async () => {
    const { mesh, watcher } = await kubeMesh(`
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: v2 } }]
`);
    const { slices, services, pods: podMeta } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'reviews', HTTP));
    podMeta.upsert(
      pod('shop', 'r-1', { app: 'reviews', version: 'v1' }),
      pod('shop', 'r-2', { app: 'reviews', version: 'v2' }),
      pod('shop', 'r-3', { app: 'reviews', version: 'v1' }),
    );
    slices.upsert(
      slice(
        'shop',
        'reviews-a',
        'reviews',
        [{ name: 'http', port: pods.port }],
        [endpoint('127.0.0.2', 'r-1'), endpoint('127.0.0.3', 'r-2'), endpoint('127.0.0.4', 'r-3')],
      ),
    );
    expect([...(await countPods(mesh, 'http://reviews:9080/', 30)).keys()]).toEqual(['127.0.0.3']);

    // r-3 is relabelled v2 and r-2 v1: the subset follows, with no configuration change.
    podMeta.upsert(pod('shop', 'r-3', { app: 'reviews', version: 'v2' }), pod('shop', 'r-2', { app: 'reviews', version: 'v1' }));
    expect([...(await countPods(mesh, 'http://reviews:9080/', 30)).keys()]).toEqual(['127.0.0.4']);

    // An update that leaves the labels alone changes nothing.
    podMeta.upsert({
      ...pod('shop', 'r-3', { app: 'reviews', version: 'v2' }),
      metadata: { name: 'r-3', namespace: 'shop', labels: { app: 'reviews', version: 'v2' }, annotations: { touched: 'yes' } },
    });
    expect([...(await countPods(mesh, 'http://reviews:9080/', 10)).keys()]).toEqual(['127.0.0.4']);

    // No pod in the subset: 503 naming the subset's labels.
    podMeta.upsert(pod('shop', 'r-3', { app: 'reviews', version: 'v3' }));
    const none = await get(mesh, 'http://reviews:9080/');
    expect(none.status).toBe(503);
    expect(none.text).toContain('no endpoint of reviews.shop.svc.cluster.local has the labels of subset "v2" (version=v2)');
  });

  it('speaks HTTP/2 (h2c) to a Service port named grpc-*, as istiod picks the protocol', async () => {
    const h2c = createH2cServer((req, res) => res.end(`h2 ${req.httpVersion}`));
    await new Promise<void>((resolve) => h2c.listen(0, '127.0.0.5', resolve));
    try {
      const { mesh, watcher } = await kubeMesh();
      const { slices, services } = namespaceCollections(watcher, 'shop');
      services.upsert(service('shop', 'grpc-api', [{ name: 'grpc-api', port: 50051 }]));
      slices.upsert(slice('shop', 'grpc-api-1', 'grpc-api', [{ name: 'grpc-api', port: (h2c.address() as AddressInfo).port }], [endpoint('127.0.0.5', 'g-1')]));
      const res = await mesh.request('http://grpc-api:50051/svc.Greeter/Hello', { method: 'POST', body: 'x' });
      expect(res.statusCode).toBe(200);
      expect(await res.body.text()).toBe('h2 2.0');
    } finally {
      await new Promise<void>((resolve) => h2c.close(() => resolve()));
    }
  });

  it('selects one pod of a headless service by its hostname', async () => {
    const { mesh, watcher } = await kubeMesh();
    const { slices, services } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'db', [{ name: 'pg', port: 5432 }]));
    slices.upsert(
      slice(
        'shop',
        'db-1',
        'db',
        [{ name: 'pg', port: pods.port }],
        [endpoint('127.0.0.2', 'db-0', { hostname: 'db-0' }), endpoint('127.0.0.3', 'db-1', { hostname: 'db-1' })],
      ),
    );
    const counts = await countPods(mesh, 'http://db-1.db.shop.svc.cluster.local:5432/', 10);
    expect([...counts.keys()]).toEqual(['127.0.0.3']);
  });
});

describe('locality from Nodes, or from the slice when Nodes are forbidden', () => {
  // Locality priorities apply only with outlierDetection, as in Istio.
  const RULE = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s }
`;

  it("prefers endpoints whose node is in the caller's zone", async () => {
    const { mesh, watcher } = await kubeMesh(RULE, { locality: 'us-east1/us-east1-b' });
    const { slices, services, nodes } = namespaceCollections(watcher, 'shop');
    nodes.upsert(node('n-a', 'us-east1', 'us-east1-a'), node('n-b', 'us-east1', 'us-east1-b'), node('n-c', 'eu-west1', 'eu-west1-b'));
    services.upsert(service('shop', 'reviews', HTTP));
    // Slice zones are absent: the node is what tells.
    slices.upsert(
      slice(
        'shop',
        'reviews-a',
        'reviews',
        [{ name: 'http', port: pods.port }],
        [
          endpoint('127.0.0.2', 'r-1', { nodeName: 'n-a' }),
          endpoint('127.0.0.3', 'r-2', { nodeName: 'n-b' }),
          endpoint('127.0.0.4', 'r-3', { nodeName: 'n-c' }),
        ],
      ),
    );
    expect([...(await countPods(mesh, 'http://reviews:9080/', 40)).keys()]).toEqual(['127.0.0.3']);
    // The node of r-2 is relabelled to another zone, r-1's to the caller's: traffic follows.
    nodes.upsert(node('n-b', 'us-east1', 'us-east1-c'), node('n-a', 'us-east1', 'us-east1-b'));
    expect([...(await countPods(mesh, 'http://reviews:9080/', 40)).keys()]).toEqual(['127.0.0.2']);
  });

  it("falls back to the slice's zone (the caller's region assumed) when Nodes are forbidden", async () => {
    const watcher = new MemoryKubeWatcher();
    watcher.autoSync = false;
    const { slices, services, pods: podMeta, nodes } = namespaceCollections(watcher, 'shop');
    const meshPromise = meshFromYaml(RULE, { namespace: 'shop', dns: false, random: seededRandom(3), locality: 'us-east1/us-east1-b', kubeWatcher: watcher });
    const mesh = await meshPromise;
    meshes.push(mesh);
    nodes.fail(403, 'nodes is forbidden: User "system:serviceaccount:shop:app" cannot list resource "nodes" at the cluster scope');
    services.sync([service('shop', 'reviews', HTTP)]);
    podMeta.sync([]);
    slices.sync([
      slice(
        'shop',
        'reviews-a',
        'reviews',
        [{ name: 'http', port: pods.port }],
        [endpoint('127.0.0.2', 'r-1', { nodeName: 'n-a', zone: 'us-east1-a' }), endpoint('127.0.0.3', 'r-2', { nodeName: 'n-b', zone: 'us-east1-b' })],
      ),
    ]);
    expect([...(await countPods(mesh, 'http://reviews:9080/', 40)).keys()]).toEqual(['127.0.0.3']);
  });
});

describe('Sidecar egress hosts scope Kubernetes services, as Istio does', () => {
  const sidecar = (hosts: string) => `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: shop }
spec:
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
  egress:
  - hosts: ${hosts}
`;

  async function scoped(hosts: string): Promise<Mesh> {
    const { mesh, watcher } = await kubeMesh(sidecar(hosts));
    const shop = namespaceCollections(watcher, 'shop');
    shop.services.upsert(service('shop', 'reviews', HTTP));
    shop.slices.upsert(slice('shop', 'reviews-a', 'reviews', [{ name: 'http', port: pods.port }], [endpoint('127.0.0.2', 'r-1')]));
    // Namespace `other` is not open yet: its collections are listed here, as the API would list
    // them, so the first request to it waits for that list, not for the warm-up bound (10 s).
    const elsewhere = namespaceCollections(watcher, 'other');
    elsewhere.services.sync([service('other', 'ratings', HTTP)]);
    elsewhere.slices.sync([slice('other', 'ratings-a', 'ratings', [{ name: 'http', port: pods.port }], [endpoint('127.0.0.3', 'x-1')])]);
    elsewhere.pods.sync();
    return mesh;
  }

  it('a service outside the egress hosts is not in the registry: REGISTRY_ONLY refuses it', async () => {
    const mesh = await scoped('["./*"]');
    expect([...(await countPods(mesh, 'http://reviews:9080/', 5)).keys()]).toEqual(['127.0.0.2']);
    await expect(mesh.request('http://ratings.other.svc.cluster.local:9080/')).rejects.toThrow(/ratings\.other\.svc\.cluster\.local/);
    await expect(mesh.request('http://ratings.other:9080/')).rejects.toThrow(/ratings\.other/);
  });

  it('the same service is served once the egress hosts import its namespace', async () => {
    const mesh = await scoped('["./*", "other/*"]');
    expect([...(await countPods(mesh, 'http://ratings.other.svc.cluster.local:9080/', 5)).keys()]).toEqual(['127.0.0.3']);
    expect([...(await countPods(mesh, 'http://reviews:9080/', 5)).keys()]).toEqual(['127.0.0.2']);
  });
});

describe('the endpoints gauge (sidecarless.endpoints)', () => {
  it('counts a terminating pod apart from the healthy ones; it takes no request, and leaves the count when its slice drops it', async () => {
    const otel = new OtelHarness({ tracing: false });
    try {
      const { mesh, watcher } = await kubeMesh();
      const { slices, services } = namespaceCollections(watcher, 'shop');
      services.upsert(service('shop', 'reviews', HTTP));
      const ports = [{ name: 'http', port: pods.port }];
      slices.upsert(slice('shop', 'reviews-a', 'reviews', ports, [endpoint('127.0.0.2', 'r-1'), endpoint('127.0.0.3', 'r-2', { conditions: TERMINATING })]));
      expect([...(await countPods(mesh, 'http://reviews:9080/', 10)).keys()]).toEqual(['127.0.0.2']);
      const count = async (state: string): Promise<number> => {
        let n = 0;
        for (const p of await otel.metric('sidecarless.endpoints')) {
          if (p.attributes['sidecarless.cluster'] === 'reviews.shop.svc.cluster.local||9080' && p.attributes['sidecarless.endpoint.state'] === state)
            n += p.value as number;
        }
        return n;
      };
      expect(await count('healthy')).toBe(1);
      expect(await count('terminating')).toBe(1);
      const cluster = mesh.inspect().clusters.find((c) => c.name === `outbound|9080||reviews.shop.svc.cluster.local`);
      expect(cluster?.endpoints.map((e) => `${e.address} ${e.health}`)).toEqual([`127.0.0.2:${pods.port} healthy`, `127.0.0.3:${pods.port} terminating`]);
      slices.upsert(slice('shop', 'reviews-a', 'reviews', ports, [endpoint('127.0.0.2', 'r-1')]));
      expect(await count('terminating')).toBe(0);
      expect(await count('healthy')).toBe(1);
    } finally {
      await Promise.all(meshes.splice(0).map((m) => m.close()));
      await otel.shutdown();
    }
  });
});
