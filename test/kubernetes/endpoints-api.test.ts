import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import { createMesh } from '../../src/index.js';
import type { KubeCollectionReport, KubernetesDiscoveryNote, KubernetesOptions, Mesh, MeshOptions } from '../../src/index.js';
import { KubeCluster } from '../helpers/kube-cluster.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// Endpoints of Kubernetes services through the real path: the official client against the fake
// API server, EndpointSlices and Services written there, real pods on 127.0.0.2 and 127.0.0.3.
const WAIT = { timeout: 10_000, interval: 20 };
// DNS that cannot answer: a request served at all was served from the API.
const NO_DNS: MeshOptions['dns'] = { servers: ['127.0.0.1:9'], resolvConfPath: '/nonexistent/resolv.conf', timeoutMs: 200, attempts: 1 };

let pods: Pods;
let log: RequestLog;
let cluster: KubeCluster;
let dir: string;
let mesh: Mesh | undefined;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  log = new RequestLog(pods);
});
afterAll(async () => {
  await pods.close();
});
beforeEach(async () => {
  cluster = await KubeCluster.start();
  dir = await makeTempDir();
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await cluster.close();
  await removeTempDir(dir);
  log.clear();
});

async function start(extra: Partial<KubernetesOptions> = {}, options: Partial<MeshOptions> = {}): Promise<Mesh> {
  // Seeded: the default balancer (LEAST_REQUEST) breaks ties at random; which pods answer a few
  // sequential calls must not depend on luck.
  mesh = await createMesh({ namespace: 'shop', dns: NO_DNS, random: seededRandom(5), ...options, discovery: await cluster.discovery(dir, extra) });
  return mesh;
}

function reviews(): void {
  cluster.service('reviews', 9080);
  cluster.pod('reviews', 'reviews-a', '127.0.0.2', pods.port);
  cluster.pod('reviews', 'reviews-b', '127.0.0.3', pods.port);
}

async function call(m: Mesh, url = 'http://reviews:9080/'): Promise<{ status: number; pod: string | undefined; text: string }> {
  const res = await m.request(url);
  const text = await res.body.text();
  const pod = res.headers['x-pod'];
  return { status: res.statusCode, pod: typeof pod === 'string' ? pod : undefined, text };
}

async function podsAnswering(m: Mesh, n: number, url?: string): Promise<string[]> {
  const seen = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await call(m, url);
    expect(r.status, r.text).toBe(200);
    seen.add(r.pod ?? '?');
  }
  return [...seen].sort();
}

describe('endpoints from the Kubernetes API (official client, fake API server)', () => {
  it('serves a Kubernetes service from its EndpointSlices, before DNS, for every way of naming it', async () => {
    reviews();
    const m = await start();
    for (const url of ['http://reviews:9080/', 'http://reviews.shop:9080/', 'http://reviews.shop.svc.cluster.local:9080/']) {
      expect(await podsAnswering(m, 20, url)).toEqual(['127.0.0.2', '127.0.0.3']);
    }
    const view = m.inspect().clusters.find((c) => c.host === 'reviews.shop.svc.cluster.local');
    expect(view).toMatchObject({ discovery: 'kubernetes' });
    // The Host the pods see stays the service's name.
    expect(log.seen.at(-1)?.host).toBe('reviews.shop.svc.cluster.local:9080');
  });

  it('istioConfig: false still gives endpoints, and watches no Istio kind', async () => {
    reviews();
    const m = await start({ istioConfig: false });
    expect(await podsAnswering(m, 20)).toEqual(['127.0.0.2', '127.0.0.3']);
    const watched = m.kubernetesStatus()!.collections.map((c) => c.description);
    expect(watched.filter((d) => d.includes('istio.io'))).toEqual([]);
    expect(watched).toContainEqual(expect.stringMatching(/EndpointSlice in shop/));
  });

  it('endpoints: false leaves Kubernetes names to DNS', async () => {
    reviews();
    const m = await start({ endpoints: false });
    expect(
      m
        .kubernetesStatus()!
        .collections.map((c) => c.description)
        .filter((d) => /EndpointSlice|^v1 (Service|Pod|Node)/.test(d)),
    ).toEqual([]);
    const r = await call(m, 'http://reviews.shop:9080/');
    // DNS (which cannot answer here) was asked, not the API.
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/no healthy upstream for reviews\.shop\.svc\.cluster\.local/);
    expect(log.seen).toEqual([]);
  });

  it('endpoint watches report in kubernetesStatus() and the kubernetesStatus event; a forbidden one neither fails createMesh nor serves wrongly', async () => {
    reviews();
    cluster.api.forbid('endpointslices');
    const reports: KubeCollectionReport[] = [];
    const m = await start();
    m.on('kubernetesStatus', (r) => reports.push(r));
    await vi.waitFor(() => {
      const slices = m.kubernetesStatus()!.collections.find((c) => c.description.includes('EndpointSlice in shop'));
      expect(slices?.status.error?.message).toMatch(/403.*endpointslices\.discovery\.k8s\.io is forbidden/);
    }, WAIT);
    expect(reports.some((r) => r.description.includes('EndpointSlice in shop') && r.status.error !== undefined)).toBe(true);
    const r = await call(m);
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/no healthy upstream for reviews\.shop\.svc\.cluster\.local: the Kubernetes API could not be read \(.*forbidden/);
    expect(log.seen).toEqual([]);

    // RBAC granted: the watch lists, the error clears, the service serves.
    cluster.api.allow('endpointslices');
    await vi.waitFor(async () => expect((await call(m)).status).toBe(200), WAIT);
    const slices = m.kubernetesStatus()!.collections.find((c) => c.description.includes('EndpointSlice in shop'));
    expect(slices?.status).toMatchObject({ synced: true });
    expect(slices?.status.error).toBeUndefined();
  });

  it('first requests wait for a slow first list instead of failing or passing through', async () => {
    reviews();
    cluster.api.stall('endpointslices');
    cluster.api.stall('services');
    const m = await start();
    // createMesh did not wait for the endpoint lists; both are held by the server now.
    await vi.waitFor(() => {
      expect(cluster.api.stalledRequests('endpointslices')).toBeGreaterThan(0);
      expect(cluster.api.stalledRequests('services')).toBeGreaterThan(0);
    }, WAIT);
    // A bare name (is `reviews` a Service? not known yet) and a full one, both in flight.
    const bare = call(m, 'http://reviews:9080/');
    const full = call(m, 'http://reviews.shop.svc.cluster.local:9080/');
    cluster.api.unstall('services');
    cluster.api.unstall('endpointslices');
    for (const r of await Promise.all([bare, full])) {
      expect(r.status, r.text).toBe(200);
      expect(['127.0.0.2', '127.0.0.3']).toContain(r.pod);
    }
  });

  it('the wait is bounded (warmupTimeoutMs): a list that never comes gives a 503 saying so, then serves once it does', async () => {
    reviews();
    cluster.api.stall('endpointslices');
    cluster.api.stall('services');
    const m = await start({ warmupTimeoutMs: 200 });
    const r = await call(m, 'http://reviews.shop:9080/');
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/no healthy upstream for reviews\.shop\.svc\.cluster\.local: the Kubernetes API has not listed the Services of namespace shop yet/);
    cluster.api.unstall('services');
    cluster.api.unstall('endpointslices');
    await vi.waitFor(async () => expect((await call(m, 'http://reviews.shop:9080/')).status).toBe(200), WAIT);
  });

  it('Nodes forbidden: a note in the kubernetesNote event, kubernetesStatus().notes and the log; the service serves', async () => {
    reviews();
    cluster.api.forbid('nodes');
    const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const logger = {
      debug: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'debug', obj, msg }),
      info: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'info', obj, msg }),
      warn: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', obj, msg }),
      error: (obj: Record<string, unknown>, msg: string) => lines.push({ level: 'error', obj, msg }),
    };
    const notes: KubernetesDiscoveryNote[] = [];
    const m = await start({}, { logger, locality: 'eu-west/eu-west-1a' });
    m.on('kubernetesNote', (n) => notes.push(n));
    expect(await podsAnswering(m, 10)).toEqual(['127.0.0.2', '127.0.0.3']);
    await vi.waitFor(() => expect(m.kubernetesStatus()!.notes.length).toBeGreaterThan(0), WAIT);
    const note = m.kubernetesStatus()!.notes[0]!;
    expect(note.collection).toBe('v1 Node');
    expect(note.message).toMatch(/forbidden; endpoint locality comes from EndpointSlice zones \(region eu-west\)/);
    const logged = lines.find((l) => l.obj.event === 'kubernetes.note');
    expect(logged?.msg).toBe(note.message);
    // Subscribed after the note was made: the status keeps it; the event fires once per cause.
    expect(notes.length).toBeLessThanOrEqual(1);
  });
});

describe('the sidecarless.kubernetes.watch_restarts metric', () => {
  it('counts a watch the API server dropped', async () => {
    const otel = new OtelHarness({ tracing: false });
    try {
      reviews();
      const m = await start();
      expect(await podsAnswering(m, 10)).toEqual(['127.0.0.2', '127.0.0.3']);
      const open = m.kubernetesStatus()!.collections.length;
      await vi.waitFor(() => expect(cluster.api.openWatches).toBe(open), WAIT);
      const restarts = async (): Promise<number> => sum(await otel.metric('sidecarless.kubernetes.watch_restarts'), /EndpointSlice in shop/);
      expect(await restarts()).toBe(0);
      cluster.api.dropWatches();
      await vi.waitFor(async () => expect(await restarts()).toBe(1), WAIT);
      // And nothing failed meanwhile.
      expect(await podsAnswering(m, 10)).toEqual(['127.0.0.2', '127.0.0.3']);
    } finally {
      await mesh?.close();
      mesh = undefined;
      await otel.shutdown();
    }
  });
});

function sum(points: DataPoint<number | Histogram>[], resource: RegExp): number {
  let n = 0;
  for (const p of points) {
    if (resource.test(String(p.attributes['sidecarless.kubernetes.resource']))) n += typeof p.value === 'number' ? p.value : p.value.count;
  }
  return n;
}
