import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMesh } from '../../src/index.js';
import type { KubeCollectionReport, KubernetesOptions, Mesh, MeshConfigError } from '../../src/index.js';
import { CORE_RESOURCES, FakeKubeApi, ISTIO_RESOURCES } from '../helpers/fake-kube-api.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import type { InlineConfig } from '../../src/index.js';
import { Pods } from '../helpers/pods.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// 127.0.0.2 is reviews v1, 127.0.0.3 reviews v2; the Istio resources live in the fake API server.
const WAIT = { timeout: 10_000, interval: 20 };
let pods: Pods;

/** The object the fake API server serves, given inline instead (it is validated at run time). */
const asConfig = (object: FakeObject): InlineConfig => object as unknown as InlineConfig;

function serviceEntry(port: number, apiVersion = 'networking.istio.io/v1'): FakeObject {
  return {
    apiVersion,
    kind: 'ServiceEntry',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: {
      hosts: ['reviews.shop.svc.cluster.local'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: port, name: 'http', protocol: 'HTTP' }],
      endpoints: [
        { address: '127.0.0.2', labels: { version: 'v1' } },
        { address: '127.0.0.3', labels: { version: 'v2' } },
      ],
    },
  };
}

const destinationRule: FakeObject = {
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'DestinationRule',
  metadata: { name: 'reviews', namespace: 'shop' },
  spec: {
    host: 'reviews',
    subsets: [
      { name: 'v1', labels: { version: 'v1' } },
      { name: 'v2', labels: { version: 'v2' } },
    ],
  },
};

function virtualService(http: unknown[], namespace = 'shop'): FakeObject {
  return { apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: 'reviews', namespace }, spec: { hosts: ['reviews'], http } };
}

const jasonToV2 = [
  { match: [{ headers: { 'x-user': { exact: 'jason' } } }], route: [{ destination: { host: 'reviews', subset: 'v2' } }] },
  { route: [{ destination: { host: 'reviews', subset: 'v1' } }] },
];

async function pod(mesh: Mesh, headers: Record<string, string> = {}): Promise<string> {
  const response = await mesh.fetch(`http://reviews:${pods.port}/`, { headers });
  expect(response.status).toBe(200);
  return ((await response.json()) as { pod: string }).pod;
}

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
});

afterAll(async () => {
  await pods.close();
});

describe('Istio configuration from the Kubernetes API', () => {
  let api: FakeKubeApi;
  let dir: string;
  let mesh: Mesh | undefined;

  beforeEach(async () => {
    api = await FakeKubeApi.start({ token: 't', resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES] });
    dir = await makeTempDir();
  });

  afterEach(async () => {
    await mesh?.close();
    mesh = undefined;
    await api.close();
    await removeTempDir(dir);
    vi.unstubAllEnvs();
  });

  async function kubernetes(extra: Partial<KubernetesOptions> = {}): Promise<KubernetesOptions> {
    return { kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 }, ...extra };
  }

  it('routes by the VirtualService in the cluster, and follows its changes and deletion', async () => {
    api.create(serviceEntry(pods.port));
    api.create(destinationRule);
    api.create(virtualService(jasonToV2));
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() });
    expect(await pod(mesh)).toBe('127.0.0.2');
    expect(await pod(mesh, { 'x-user': 'jason' })).toBe('127.0.0.3');

    // A weight change: everything to v2.
    api.update(
      virtualService([
        {
          route: [
            { destination: { host: 'reviews', subset: 'v1' }, weight: 0 },
            { destination: { host: 'reviews', subset: 'v2' }, weight: 100 },
          ],
        },
      ]),
    );
    await vi.waitFor(async () => expect(await pod(mesh!)).toBe('127.0.0.3'), WAIT);
    for (let i = 0; i < 10; i++) expect(await pod(mesh)).toBe('127.0.0.3');

    // Without the VirtualService, requests spread over both endpoints again.
    api.delete('networking.istio.io/v1', 'VirtualService', 'reviews', 'shop');
    const seen = new Set<string>();
    await vi.waitFor(async () => {
      seen.add(await pod(mesh!));
      expect(seen).toEqual(new Set(['127.0.0.2', '127.0.0.3']));
    }, WAIT);
    // Objects written as v1beta1 are read through the preferred version, v1.
    expect(api.requests.some((r) => r.url.startsWith('/apis/networking.istio.io/v1/namespaces/shop/destinationrules?'))).toBe(true);
    expect(api.requests.some((r) => r.url.startsWith('/apis/networking.istio.io/v1alpha3/namespaces/shop/envoyfilters?'))).toBe(true);
    expect(mesh.kubernetesStatus()?.unserved).toEqual([
      'sidecarless.io (group not served: RateLimitPolicy)',
      'gateway.networking.k8s.io (group not served: HTTPRoute, GRPCRoute)',
    ]);
  });

  it('reads the root namespace and configured namespaces, not others', async () => {
    api.create(serviceEntry(pods.port));
    api.create(destinationRule);
    const fqdn = 'reviews.shop.svc.cluster.local';
    const meshWide = virtualService(
      [
        { match: [{ headers: { 'x-user': { exact: 'jason' } } }], route: [{ destination: { host: fqdn, subset: 'v2' } }] },
        { route: [{ destination: { host: fqdn, subset: 'v1' } }] },
      ],
      'istio-system',
    );
    meshWide.metadata.name = 'mesh-wide';
    (meshWide['spec'] as { hosts: string[] }).hosts = [fqdn];
    api.create(meshWide);
    api.create({
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'ratings', namespace: 'team-b' },
      spec: {
        hosts: ['ratings.team-b.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: pods.port, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.3' }],
      },
    });
    mesh = await createMesh({ namespace: 'shop', dns: false, outboundTrafficPolicy: 'REGISTRY_ONLY', discovery: await kubernetes() });
    for (let i = 0; i < 5; i++) {
      expect(await pod(mesh, { 'x-user': 'jason' })).toBe('127.0.0.3');
      expect(await pod(mesh)).toBe('127.0.0.2');
    }
    // team-b is not read: its ServiceEntry is unknown, so REGISTRY_ONLY refuses the host.
    const refused = (await mesh.fetch(`http://ratings.team-b:${pods.port}/`).catch((e: unknown) => e)) as Error;
    expect((refused.cause as Error | undefined)?.name).toBe('UnknownHostError');
    await mesh.close();
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes({ namespaces: ['team-b'] }) });
    const response = await mesh.fetch(`http://ratings.team-b:${pods.port}/`);
    expect(((await response.json()) as { pod: string }).pod).toBe('127.0.0.3');
  });

  it('no request fails while watches restart, re-list after 410 and reconnect', async () => {
    api.create(serviceEntry(pods.port));
    api.create(destinationRule);
    api.create(virtualService(jasonToV2));
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() });
    let snapshots = 0;
    mesh.on('snapshot', () => snapshots++);
    for (let round = 0; round < 5; round++) {
      api.dropWatches();
      if (round % 2 === 1) api.compact();
      for (let i = 0; i < 10; i++) {
        expect(await pod(mesh, { 'x-user': 'jason' })).toBe('127.0.0.3');
        expect(await pod(mesh)).toBe('127.0.0.2');
      }
    }
    // Re-lists found nothing new: no configuration update at all.
    await vi.waitFor(() => expect(api.openWatches).toBe(mesh!.kubernetesStatus()!.collections.length), WAIT);
    expect(snapshots).toBe(0);
  });

  it('rejects an invalid resource with an error naming it, while the last good configuration serves', async () => {
    api.create(serviceEntry(pods.port));
    api.create(destinationRule);
    api.create(virtualService(jasonToV2));
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() });
    const rejected = new Promise<MeshConfigError>((resolve) => mesh!.once('configRejected', resolve));
    api.update(virtualService([{ route: [{ destination: { host: 'reviews', subset: 'v2' }, weight: 'all' }] }]));
    const error = await rejected;
    expect(error.message).toContain('VirtualService shop/reviews');
    expect(error.message).toContain('spec.http[0].route[0].weight');
    expect(error.message).toContain('kubernetes /apis/networking.istio.io/v1/namespaces/shop/virtualservices/reviews');
    expect(await pod(mesh)).toBe('127.0.0.2');
    expect(await pod(mesh, { 'x-user': 'jason' })).toBe('127.0.0.3');
  });

  it('coalesces the events of one tick into one configuration update', async () => {
    api.create(serviceEntry(pods.port));
    api.create(destinationRule);
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() });
    let snapshots = 0;
    mesh.on('snapshot', () => snapshots++);
    await vi.waitFor(() => expect(api.openWatches).toBe(mesh!.kubernetesStatus()!.collections.length), WAIT);
    api.batch(() => {
      api.create(virtualService(jasonToV2));
      for (let i = 0; i < 20; i++) {
        api.create({
          ...virtualService([]),
          metadata: { name: `svc-${i}`, namespace: 'shop' },
          spec: { hosts: [`svc-${i}`], http: [{ route: [{ destination: { host: `svc-${i}` } }] }] },
        });
      }
    });
    await vi.waitFor(async () => {
      for (let i = 0; i < 10; i++) expect(await pod(mesh!, { 'x-user': 'jason' })).toBe('127.0.0.3');
    }, WAIT);
    // 21 events read together make one snapshot (two if the stream was split across reads).
    expect(snapshots).toBeGreaterThanOrEqual(1);
    expect(snapshots).toBeLessThanOrEqual(2);
  });

  it('files take precedence over the cluster for the same resource, with a warning', async () => {
    api.create(serviceEntry(pods.port));
    api.create(destinationRule);
    api.create(virtualService([{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }]));
    const local = virtualService([{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }]);
    mesh = await createMesh({ namespace: 'shop', dns: false, config: [asConfig(local)], discovery: await kubernetes() });
    for (let i = 0; i < 5; i++) expect(await pod(mesh)).toBe('127.0.0.2');
    expect(mesh.snapshot.warnings.map((w) => w.message)).toContainEqual(
      expect.stringMatching(/VirtualService shop\/reviews from kubernetes is ignored: inline defines it too/),
    );
  });

  it('a cluster without Istio is fine: file configuration serves and status says what is missing', async () => {
    await api.close();
    api = await FakeKubeApi.start({ token: 't' });
    mesh = await createMesh({ namespace: 'shop', dns: false, config: [asConfig(serviceEntry(pods.port))], discovery: await kubernetes() });
    expect(await pod(mesh)).toMatch(/^127\.0\.0\.[23]$/);
    const status = mesh.kubernetesStatus()!;
    expect(status.unserved).toEqual([
      'networking.istio.io (group not served: VirtualService, DestinationRule, ServiceEntry, WorkloadEntry, Sidecar, EnvoyFilter)',
      'security.istio.io (group not served: PeerAuthentication, AuthorizationPolicy, RequestAuthentication)',
      'sidecarless.io (group not served: RateLimitPolicy)',
      'gateway.networking.k8s.io (group not served: HTTPRoute, GRPCRoute)',
    ]);
    // Only endpoint discovery's watches are open: no Istio kind is watched.
    expect(status.collections.map((c) => c.description).filter((d) => d.includes('istio.io'))).toEqual([]);
  });

  it('an API unreachable at start: the mesh starts on its files, reports it, and applies the cluster once it answers', async () => {
    api.create(destinationRule);
    api.create(virtualService(jasonToV2));
    const options = await kubernetes();
    await api.suspend();
    mesh = await createMesh({ namespace: 'shop', dns: false, config: [asConfig(serviceEntry(pods.port))], discovery: options });
    expect(mesh.kubernetesStatus()?.discoveryError?.message).toMatch(/ECONNREFUSED/);
    const before = new Set<string>();
    for (let i = 0; i < 20; i++) before.add(await pod(mesh, { 'x-user': 'jason' }));
    expect(before).toEqual(new Set(['127.0.0.2', '127.0.0.3']));
    await api.resume();
    const synced = () => {
      const status = mesh!.kubernetesStatus()!;
      expect(status.discoveryError).toBeUndefined();
      expect(status.collections.length).toBeGreaterThan(0);
      expect(status.collections.every((c) => c.status.synced)).toBe(true);
    };
    await vi.waitFor(synced, WAIT);
    // The last list's update is applied on the next tick.
    await vi.waitFor(async () => {
      for (let i = 0; i < 20; i++) expect(await pod(mesh!, { 'x-user': 'jason' })).toBe('127.0.0.3');
    }, WAIT);
    for (let i = 0; i < 5; i++) expect(await pod(mesh)).toBe('127.0.0.2');
  });

  it('a forbidden kind is reported in status and events while the rest keeps working', async () => {
    api.create(serviceEntry(pods.port));
    api.create(destinationRule);
    api.create(virtualService(jasonToV2));
    api.forbid('authorizationpolicies');
    const reports: KubeCollectionReport[] = [];
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: { ...(await kubernetes()) } });
    mesh.on('kubernetesStatus', (report) => reports.push(report));
    expect(await pod(mesh, { 'x-user': 'jason' })).toBe('127.0.0.3');
    const forbidden = mesh.kubernetesStatus()!.collections.filter((c) => c.status.error);
    expect(forbidden.map((c) => c.description)).toEqual([
      'security.istio.io/v1 AuthorizationPolicy in shop',
      'security.istio.io/v1 AuthorizationPolicy in istio-system',
    ]);
    expect(forbidden[0]!.status.error?.message).toMatch(/403 authorizationpolicies.security.istio.io is forbidden/);
    await vi.waitFor(() => expect(reports.some((r) => r.status.error !== undefined)).toBe(true), WAIT);
    api.allow('authorizationpolicies');
    await vi.waitFor(() => expect(mesh!.kubernetesStatus()!.collections.every((c) => c.status.synced && !c.status.error)).toBe(true), WAIT);
  });

  it("discovery 'auto' outside a pod is the embedded default", async () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    mesh = await createMesh({ namespace: 'shop', dns: false, config: [asConfig(serviceEntry(pods.port))], discovery: 'auto' });
    expect(mesh.kubernetesStatus()).toBeUndefined();
    await mesh.close();
    // A Kubernetes service address but no readable service account token: not a pod either.
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '127.0.0.1');
    mesh = await createMesh({ namespace: 'shop', dns: false, config: [asConfig(serviceEntry(pods.port))], discovery: 'auto' });
    expect(mesh.kubernetesStatus()).toBeUndefined();
    expect(await pod(mesh)).toMatch(/^127\.0\.0\.[23]$/);
  });

  it("discovery 'kubernetes' without the client installed fails clearly", async () => {
    vi.resetModules();
    vi.doMock('@kubernetes/client-node', () => {
      throw new Error('Cannot find package @kubernetes/client-node');
    });
    try {
      const fresh = await import('../../src/index.js');
      await expect(fresh.createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() })).rejects.toThrow(
        "install @kubernetes/client-node to use discovery: 'kubernetes'",
      );
    } finally {
      vi.doUnmock('@kubernetes/client-node');
      vi.resetModules();
    }
  });
});
