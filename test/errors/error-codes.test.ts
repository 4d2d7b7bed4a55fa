import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AdminOptionError,
  BalancerConfigError,
  createMesh,
  DeadlineExceededError,
  DiscoveryOptionError,
  DnsLookupError,
  DnsOptionError,
  KubernetesApiError,
  KubernetesClientMissingError,
  KubernetesConfigError,
  MeshClosedError,
  MeshConfigError,
  MeshError,
  NoTlsRouteError,
  PerTryTimeoutError,
  RateLimitedError,
  registerBalancer,
  RouteTimeoutError,
  runWithDeadline,
  TlsPortPlaintextError,
  UnknownHostError,
} from '../../src/index.js';
import type { DnsLookupFailure, Mesh } from '../../src/index.js';
import { CORE_RESOURCES, FakeKubeApi, ISTIO_RESOURCES } from '../helpers/fake-kube-api.js';
import { TestClock } from '../helpers/test-clock.js';
import { docs, meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

/**
 * Every error a user can meet is a class extending MeshError with a stable ERR_MESH_* code,
 * produced here through the public API, as an application would meet it (docs/errors.md).
 */
type ErrorClass = abstract new (...args: never[]) => MeshError;

function expectCoded(error: unknown, cls: ErrorClass, code: string): void {
  expect(error).toBeInstanceOf(cls);
  expect(error).toBeInstanceOf(MeshError);
  expect(error).toBeInstanceOf(Error);
  expect((error as MeshError).code).toBe(code);
  expect((error as MeshError).name).toBe(cls.name);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

const WAIT = { timeout: 10_000, interval: 20 };
let pods: Pods;
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
});

afterEach(async () => {
  pods.behave = undefined;
  await Promise.all(meshes.splice(0).map((m) => m.close()));
  vi.unstubAllEnvs();
});

afterAll(async () => {
  await pods.close();
});

async function mesh(yaml: string, options: Parameters<typeof meshFromYaml>[1] = {}): Promise<Mesh> {
  const m = await meshFromYaml(yaml, { namespace: 'shop', dns: false, ...options });
  meshes.push(m);
  return m;
}

/** The pod answers 200, sends part of the body, then says nothing more. */
function stallAfterHeaders(): void {
  pods.behave = (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('part of the body');
    return true;
  };
}

describe('configuration and options', () => {
  it('invalid configuration: createMesh rejects with MeshConfigError (ERR_MESH_CONFIG)', async () => {
    const error = await rejection(
      createMesh({
        namespace: 'shop',
        dns: false,
        watch: false,
        config: docs(`
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec: { hosts: [reviews], http: [{ timeout: soon }] }
`),
      }),
    );
    expectCoded(error, MeshConfigError, 'ERR_MESH_CONFIG');
  });

  it('a malformed dns option: DnsOptionError (ERR_MESH_DNS_OPTION), for portNames and for a server address', async () => {
    expectCoded(await rejection(createMesh({ namespace: 'shop', dns: { portNames: { 'not a key': 'http' } } })), DnsOptionError, 'ERR_MESH_DNS_OPTION');
    const error = await rejection(createMesh({ namespace: 'shop', dns: { servers: ['not-an-address'] } }));
    expectCoded(error, DnsOptionError, 'ERR_MESH_DNS_OPTION');
    expect((error as Error).message).toMatch(/not-an-address/);
  });

  it('a discovery option that is none of the accepted values: DiscoveryOptionError (ERR_MESH_DISCOVERY_OPTION)', async () => {
    const error = await rejection(createMesh({ namespace: 'shop', dns: false, discovery: 42 as never }));
    expectCoded(error, DiscoveryOptionError, 'ERR_MESH_DISCOVERY_OPTION');
  });

  it('a balancer name already taken: BalancerConfigError (ERR_MESH_BALANCER_CONFIG)', () => {
    let error: unknown;
    try {
      registerBalancer('ROUND_ROBIN', () => ({ update: () => undefined, pick: () => undefined }));
    } catch (e) {
      error = e;
    }
    expectCoded(error, BalancerConfigError, 'ERR_MESH_BALANCER_CONFIG');
  });

  it('serveAdmin: a remote host without allowRemote is AdminOptionError, a closed mesh MeshClosedError', async () => {
    const m = await mesh(reviewsServiceEntry(pods.port, ['127.0.0.2']));
    expectCoded(await rejection(m.serveAdmin({ host: '0.0.0.0', port: 0 })), AdminOptionError, 'ERR_MESH_ADMIN_OPTION');
    await m.close();
    expectCoded(await rejection(m.serveAdmin({ port: 0 })), MeshClosedError, 'ERR_MESH_CLOSED');
  });
});

describe('requests', () => {
  it('REGISTRY_ONLY and a host outside the registry: UnknownHostError (ERR_MESH_UNKNOWN_HOST)', async () => {
    const m = await mesh(reviewsServiceEntry(pods.port, ['127.0.0.2']), { outboundTrafficPolicy: 'REGISTRY_ONLY' });
    expectCoded(await rejection(m.request(`http://elsewhere.example:${pods.port}/`)), UnknownHostError, 'ERR_MESH_UNKNOWN_HOST');
  });

  it('a plaintext request to a TLS port: TlsPortPlaintextError (ERR_MESH_TLS_PORT_PLAINTEXT); an SNI no tls route matches: NoTlsRouteError (ERR_MESH_NO_TLS_ROUTE)', async () => {
    const m = await mesh(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec: { hosts: ["*.example.com"], resolution: NONE, ports: [{ number: ${pods.port}, name: tls, protocol: TLS }] }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: ["*.example.com"]
  tls: [{ match: [{ sniHosts: [login.example.com] }], route: [{ destination: { host: login.example.com } }] }]
`);
    expectCoded(await rejection(m.request(`http://login.example.com:${pods.port}/`)), TlsPortPlaintextError, 'ERR_MESH_TLS_PORT_PLAINTEXT');
    expectCoded(await rejection(m.request(`https://shop.example.com:${pods.port}/`)), NoTlsRouteError, 'ERR_MESH_NO_TLS_ROUTE');
  });

  it('a route timeout passing while the response streams: RouteTimeoutError (ERR_MESH_ROUTE_TIMEOUT)', async () => {
    const clock = new TestClock();
    const m = await mesh(
      `${reviewsServiceEntry(pods.port, ['127.0.0.2'])}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec: { hosts: [reviews], http: [{ route: [{ destination: { host: reviews } }], timeout: 200ms }] }
`,
      { clock },
    );
    stallAfterHeaders();
    const res = await m.request(`http://reviews:${pods.port}/`);
    expect(res.statusCode).toBe(200);
    const body = rejection(res.body.text());
    clock.advance(200);
    const error = await body;
    expectCoded(error, RouteTimeoutError, 'ERR_MESH_ROUTE_TIMEOUT');
    expect(error).toMatchObject({ timeoutMs: 200, responseStarted: true });
  });

  it('a per-try timeout passing while the response streams: PerTryTimeoutError (ERR_MESH_PER_TRY_TIMEOUT)', async () => {
    const clock = new TestClock();
    const m = await mesh(
      `${reviewsServiceEntry(pods.port, ['127.0.0.2'])}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec: { hosts: [reviews], http: [{ route: [{ destination: { host: reviews } }], retries: { attempts: 2, perTryTimeout: 200ms } }] }
`,
      { clock },
    );
    stallAfterHeaders();
    const res = await m.request(`http://reviews:${pods.port}/`);
    const body = rejection(res.body.text());
    clock.advance(200);
    const error = await body;
    expectCoded(error, PerTryTimeoutError, 'ERR_MESH_PER_TRY_TIMEOUT');
    expect(error).toMatchObject({ timeoutMs: 200, responseStarted: true });
  });

  it('the deadline of the request being handled passing while the response streams: DeadlineExceededError (ERR_MESH_DEADLINE_EXCEEDED)', async () => {
    const clock = new TestClock();
    const m = await mesh(reviewsServiceEntry(pods.port, ['127.0.0.2']), { clock });
    stallAfterHeaders();
    const res = await runWithDeadline(300, () => m.request(`http://reviews:${pods.port}/`));
    const body = rejection(res.body.text());
    // The time left (at most 300 ms) became a timer on the mesh clock.
    clock.advance(300);
    const error = await body;
    expectCoded(error, DeadlineExceededError, 'ERR_MESH_DEADLINE_EXCEEDED');
    expect(error).toMatchObject({ responseStarted: true });
  });

  it('mesh.request refused by a client-side rate limit: RateLimitedError (ERR_MESH_RATE_LIMITED)', async () => {
    const m = await mesh(`${reviewsServiceEntry(pods.port, ['127.0.0.2'])}---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  limits: [{ name: one, tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillInterval: 1h } }]
`);
    const first = await m.request(`http://reviews:${pods.port}/`);
    await first.body.dump();
    expect(first.statusCode).toBe(200);
    const error = await rejection(m.request(`http://reviews:${pods.port}/`));
    expectCoded(error, RateLimitedError, 'ERR_MESH_RATE_LIMITED');
    expect(error).toMatchObject({ limit: 'shop/reviews/one' });
  });

  it('a DNS server that refuses: DnsLookupError (ERR_MESH_DNS_LOOKUP) in the dnsError event', async () => {
    const m = await mesh(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.example]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
`,
      { dns: { servers: ['127.0.0.1:9'], timeoutMs: 200, attempts: 1 } },
    );
    const failures: DnsLookupFailure[] = [];
    m.on('dnsError', (failure) => failures.push(failure));
    await m.request(`http://ratings.example:${pods.port}/`).then(
      (r) => r.body.dump(),
      () => undefined,
    );
    await vi.waitFor(() => expect(failures.length).toBeGreaterThan(0), WAIT);
    expectCoded(failures[0]!.error, DnsLookupError, 'ERR_MESH_DNS_LOOKUP');
    expect(failures[0]!.error).toMatchObject({ hostname: 'ratings.example' });
  });
});

describe('Kubernetes', () => {
  let api: FakeKubeApi;
  let dir: string;

  beforeEach(async () => {
    api = await FakeKubeApi.start({ token: 't', resources: [...CORE_RESOURCES, ...ISTIO_RESOURCES] });
    dir = await makeTempDir();
  });

  afterEach(async () => {
    await api.close();
    await removeTempDir(dir);
  });

  it("discovery 'kubernetes' outside a pod without a kubeconfig: KubernetesConfigError (ERR_MESH_KUBERNETES_CONFIG)", async () => {
    vi.stubEnv('KUBERNETES_SERVICE_HOST', '');
    vi.stubEnv('KUBECONFIG', '');
    vi.stubEnv('HOME', dir);
    const error = await rejection(createMesh({ namespace: 'shop', dns: false, discovery: 'kubernetes' }));
    expectCoded(error, KubernetesConfigError, 'ERR_MESH_KUBERNETES_CONFIG');
    expect((error as Error).message).toMatch(/not in a pod and no kubeconfig found/);
  });

  it('a kubeconfig without the context asked for, or one that cannot be read: KubernetesConfigError', async () => {
    const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'), { context: 'staging' });
    const noContext = await rejection(createMesh({ namespace: 'shop', dns: false, discovery: { kubeconfig, context: 'prod' } }));
    expectCoded(noContext, KubernetesConfigError, 'ERR_MESH_KUBERNETES_CONFIG');
    expect((noContext as Error).message).toBe('kubeconfig has no context named "prod"');
    await writeFile(join(dir, 'broken'), 'clusters: [unterminated');
    const unreadable = await rejection(createMesh({ namespace: 'shop', dns: false, discovery: { kubeconfig: join(dir, 'broken') } }));
    expectCoded(unreadable, KubernetesConfigError, 'ERR_MESH_KUBERNETES_CONFIG');
    const missing = await rejection(createMesh({ namespace: 'shop', dns: false, discovery: { kubeconfig: join(dir, 'absent') } }));
    expectCoded(missing, KubernetesConfigError, 'ERR_MESH_KUBERNETES_CONFIG');
    expect((missing as Error).message).toContain(join(dir, 'absent'));
  });

  it('a collection the API forbids: KubernetesApiError (ERR_MESH_KUBERNETES_API) with the status, in kubernetesStatus()', async () => {
    api.forbid('virtualservices');
    const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
    const m = await createMesh({ namespace: 'shop', dns: false, discovery: { kubeconfig, backoff: { initialMs: 20, maxMs: 200 } } });
    meshes.push(m);
    let error: unknown;
    await vi.waitFor(() => {
      error = m.kubernetesStatus()?.collections.find((c) => c.status.error !== undefined)?.status.error;
      expect(error).toBeDefined();
    }, WAIT);
    expectCoded(error, KubernetesApiError, 'ERR_MESH_KUBERNETES_API');
    expect((error as KubernetesApiError).status).toBe(403);
  });

  it("discovery 'kubernetes' without @kubernetes/client-node: KubernetesClientMissingError (ERR_MESH_KUBERNETES_CLIENT_MISSING)", async () => {
    vi.resetModules();
    vi.doMock('@kubernetes/client-node', () => {
      throw new Error('Cannot find package @kubernetes/client-node');
    });
    try {
      const fresh = await import('../../src/index.js');
      const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
      const error = await rejection(fresh.createMesh({ namespace: 'shop', dns: false, discovery: { kubeconfig } }));
      expectCoded(error, fresh.KubernetesClientMissingError, 'ERR_MESH_KUBERNETES_CLIENT_MISSING');
      // A fresh copy of the modules, as another build would be: still the same class to instanceof.
      expect(error).toBeInstanceOf(KubernetesClientMissingError);
      expect(error).not.toBeInstanceOf(KubernetesConfigError);
    } finally {
      vi.doUnmock('@kubernetes/client-node');
      vi.resetModules();
    }
  });
});
