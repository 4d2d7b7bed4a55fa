// HTTPRoutes from the Kubernetes API (fake API server), routing real calls to loopback pods.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMesh } from '../../src/index.js';
import type { KubernetesOptions, Mesh, MeshConfigError } from '../../src/index.js';
import { CORE_RESOURCES, FakeKubeApi, GATEWAY_API_RESOURCES, ISTIO_RESOURCES } from '../helpers/fake-kube-api.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { Pods } from '../helpers/pods.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const WAIT = { timeout: 10_000, interval: 20 };
const V1 = '127.0.0.2';
const V2 = '127.0.0.3';
let pods: Pods;

function serviceEntry(name: string, address: string): FakeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'shop' },
    spec: {
      hosts: [`${name}.shop.svc.cluster.local`],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: pods.port, name: 'http', protocol: 'HTTP' }],
      endpoints: [{ address }],
    },
  };
}

function httpRoute(backend: string, apiVersion = 'gateway.networking.k8s.io/v1'): FakeObject {
  return {
    apiVersion,
    kind: 'HTTPRoute',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'reviews' }],
      rules: [{ backendRefs: [{ name: backend, port: pods.port }] }],
    },
  };
}

async function pod(mesh: Mesh): Promise<string> {
  const response = await mesh.fetch(`http://reviews:${pods.port}/`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { pod: string }).pod;
}

beforeAll(async () => {
  pods = await Pods.start([V1, V2]);
});
afterAll(async () => {
  await pods.close();
});

describe('Gateway API routes from the Kubernetes API', () => {
  let api: FakeKubeApi;
  let dir: string;
  let mesh: Mesh | undefined;

  beforeEach(async () => {
    api = await FakeKubeApi.start({ token: 't', resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES, ...GATEWAY_API_RESOURCES] });
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await mesh?.close();
    mesh = undefined;
    await api.close();
    await removeTempDir(dir);
  });

  async function kubernetes(): Promise<KubernetesOptions> {
    return { kubeconfig: await api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 } };
  }

  it('routes by the HTTPRoute in the cluster and follows its changes and deletion', async () => {
    api.create(serviceEntry('reviews', V1));
    api.create(serviceEntry('reviews-v2', V2));
    api.create(httpRoute('reviews-v2', 'gateway.networking.k8s.io/v1beta1'));
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() });
    expect(await pod(mesh)).toBe(V2);
    expect(api.requests.some((r) => r.url.startsWith('/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes?'))).toBe(true);
    expect(mesh.kubernetesStatus()?.unserved).not.toContainEqual(expect.stringContaining('gateway.networking.k8s.io'));

    api.update(httpRoute('reviews'));
    await vi.waitFor(async () => expect(await pod(mesh!)).toBe(V1), WAIT);
    api.update(httpRoute('reviews-v2'));
    await vi.waitFor(async () => expect(await pod(mesh!)).toBe(V2), WAIT);
    api.delete('gateway.networking.k8s.io/v1', 'HTTPRoute', 'reviews', 'shop');
    await vi.waitFor(async () => expect(await pod(mesh!)).toBe(V1), WAIT);
  });

  it('an invalid HTTPRoute is refused with its field path while the last good configuration serves', async () => {
    api.create(serviceEntry('reviews', V1));
    api.create(serviceEntry('reviews-v2', V2));
    api.create(httpRoute('reviews-v2'));
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() });
    const rejected = new Promise<MeshConfigError>((resolve) => mesh!.once('configRejected', resolve));
    const bad = httpRoute('reviews');
    (bad.spec as { rules: { backendRefs: { port?: number }[] }[] }).rules[0]!.backendRefs[0]!.port = undefined;
    api.update(bad);
    const error = await rejected;
    expect(error.message).toMatch(/HTTPRoute shop\/reviews: spec\.rules\[0\]\.backendRefs\[0\]\.port: Must have port for Service reference/);
    expect(error.message).toContain('kubernetes /apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/reviews');
    expect(await pod(mesh)).toBe(V2);
  });

  it('a cluster without the Gateway API CRDs is fine: status says the group is not served', async () => {
    await api.close();
    api = await FakeKubeApi.start({ token: 't', resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES] });
    api.create(serviceEntry('reviews', V1));
    mesh = await createMesh({ namespace: 'shop', dns: false, discovery: await kubernetes() });
    expect(await pod(mesh)).toBe(V1);
    expect(mesh.kubernetesStatus()?.unserved).toContain('gateway.networking.k8s.io (group not served: HTTPRoute, GRPCRoute)');
  });
});
