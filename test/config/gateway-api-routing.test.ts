// Gateway API routes for the mesh (GAMMA): HTTPRoutes and GRPCRoutes whose parent is a Service,
// routing real calls to loopback "pods", as Istio routes them from the same documents.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { seededRandom } from '../../src/clock.js';
import { explain, meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { call, tally } from '../istio-tasks/bookinfo.js';

const V1 = '127.0.0.2';
const V2 = '127.0.0.3';
const PLAIN = '127.0.0.4';
const MIRROR = '127.0.0.5';

/** Kubernetes Services written as ServiceEntries: reviews (all pods), reviews-v1, reviews-v2, mirror. */
const services = (port: number) => {
  const se = (name: string, addresses: readonly string[]) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [${addresses.map((a) => `{ address: ${a} }`).join(', ')}]
---
`;
  return se('reviews', [PLAIN]) + se('reviews-v1', [V1]) + se('reviews-v2', [V2]) + se('mirror', [MIRROR]);
};

const route = (rules: string, extra = '') => `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews, namespace: shop }
spec:
  parentRefs:
  - { group: "", kind: Service, name: reviews, port: PORT }${extra}
  rules:
${rules}`;

let pods: Pods;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start([V1, V2, PLAIN, MIRROR]);
});
afterEach(async () => {
  pods.behave = undefined;
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const start = (yaml: string, namespace = 'shop') =>
  meshFromYaml(services(pods.port) + yaml.replace(/PORT/g, String(pods.port)), { namespace, random: seededRandom(7) });
const url = (path: string) => `http://reviews.shop.svc.cluster.local:${pods.port}${path}`;

describe('HTTPRoute attached to a Service', () => {
  it('splits by backendRef weight (90/10 over 200 calls)', async () => {
    mesh = await start(
      route(`  - backendRefs:
    - { name: reviews-v1, port: PORT, weight: 90 }
    - { name: reviews-v2, port: PORT, weight: 10 }
`),
    );
    const counts = await tally(mesh, url('/'), 200);
    expect(counts.get(PLAIN)).toBeUndefined();
    expect(counts.get(V1)!).toBeGreaterThan(160);
    expect(counts.get(V2)!).toBeGreaterThan(5);
    expect(counts.get(V1)! + counts.get(V2)!).toBe(200);
  });

  it('path matches element by element, header matches, and the more specific match wins whatever the rule order', async () => {
    mesh = await start(
      route(`  - matches:
    - path: { type: PathPrefix, value: /api }
    backendRefs: [{ name: reviews-v1, port: PORT }]
  - matches:
    - path: { type: PathPrefix, value: /api }
      headers: [{ name: X-Canary, value: "yes" }, { name: x-canary, value: "ignored: the first of equivalent names counts" }]
    - path: { type: Exact, value: /exact }
    backendRefs: [{ name: reviews-v2, port: PORT }]
`),
    );
    expect((await call(mesh, url('/api'))).reply?.pod).toBe(V1);
    expect((await call(mesh, url('/api/books?x=1'))).reply?.pod).toBe(V1);
    // A header match ranks above the same path without one, though its rule comes second.
    expect((await call(mesh, url('/api/books'), { 'x-canary': 'yes' })).reply?.pod).toBe(V2);
    expect((await call(mesh, url('/exact'))).reply?.pod).toBe(V2);
    // PathPrefix /api does not cover /apiary; no rule matches: 404 as Istio answers.
    expect((await call(mesh, url('/apiary'))).status).toBe(404);
    expect((await call(mesh, url('/exact/more'))).status).toBe(404);
  });

  it('matches the method and query parameters', async () => {
    mesh = await start(
      route(`  - matches:
    - method: POST
    - queryParams: [{ type: RegularExpression, name: version, value: "v2|beta" }]
    backendRefs: [{ name: reviews-v2, port: PORT }]
  - backendRefs: [{ name: reviews-v1, port: PORT }]
`),
    );
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V1);
    expect((await call(mesh, url('/?version=beta'))).reply?.pod).toBe(V2);
    expect((await call(mesh, url('/?version=v3'))).reply?.pod).toBe(V1);
    const posted = await mesh.request(url('/'), { method: 'POST', body: 'x' });
    expect(JSON.parse(await posted.body.text()).pod).toBe(V2);
  });

  it('RequestHeaderModifier and ResponseHeaderModifier change what the upstream and the caller see', async () => {
    mesh = await start(
      route(`  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{ name: X-Set, value: new }]
        add: [{ name: X-Add, value: added }]
        remove: [X-Drop]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{ name: X-Served-By, value: mesh }]
        remove: [X-Pod]
    backendRefs: [{ name: reviews-v1, port: PORT }]
`),
    );
    const res = await call(mesh, url('/'), { 'x-set': 'old', 'x-add': 'first', 'x-drop': 'gone' });
    expect(res.reply?.headers['x-set']).toBe('new');
    expect(res.reply?.headers['x-add']).toBe('first, added');
    expect(res.reply?.headers['x-drop']).toBeUndefined();
    expect(res.headers['x-served-by']).toBe('mesh');
    expect(res.headers['x-pod']).toBeUndefined();
  });

  it('RequestRedirect answers the redirect itself (302 by default) and sends nothing upstream', async () => {
    let upstream = 0;
    pods.behave = () => void upstream++;
    mesh = await start(
      route(`  - matches: [{ path: { type: PathPrefix, value: /old } }]
    filters:
    - type: RequestRedirect
      requestRedirect: { path: { type: ReplacePrefixMatch, replacePrefixMatch: /new } }
  - matches: [{ path: { type: Exact, value: /moved } }]
    filters:
    - type: RequestRedirect
      requestRedirect: { scheme: https, hostname: shop.example.com, statusCode: 301 }
  - matches: [{ path: { type: Exact, value: /elsewhere } }]
    filters:
    - type: RequestRedirect
      requestRedirect: { hostname: shop.example.com, path: { type: ReplaceFullPath, replaceFullPath: /home } }
`),
    );
    const prefix = await call(mesh, url('/old/page?q=1'));
    expect(prefix.status).toBe(302);
    expect(prefix.headers['location']).toBe(`http://reviews.shop.svc.cluster.local:${pods.port}/new/page?q=1`);
    const moved = await call(mesh, url('/moved'));
    expect(moved.status).toBe(301);
    expect(moved.headers['location']).toBe('https://shop.example.com/moved');
    // No scheme and no port: the request's port is kept (as istiod sets FROM_REQUEST_PORT).
    expect((await call(mesh, url('/elsewhere?a=b'))).headers['location']).toBe(`http://shop.example.com:${pods.port}/home?a=b`);
    expect(upstream).toBe(0);
  });

  it('URLRewrite replaces the matched prefix (or the whole path) and the Host', async () => {
    mesh = await start(
      route(`  - matches: [{ path: { type: PathPrefix, value: /strip } }]
    filters:
    - type: URLRewrite
      urlRewrite: { path: { type: ReplacePrefixMatch, replacePrefixMatch: / } }
    backendRefs: [{ name: reviews-v1, port: PORT }]
  - matches: [{ path: { type: PathPrefix, value: /v1 } }]
    filters:
    - type: URLRewrite
      urlRewrite: { hostname: internal.example, path: { type: ReplacePrefixMatch, replacePrefixMatch: /api/v1 } }
    backendRefs: [{ name: reviews-v1, port: PORT }]
  - matches: [{ path: { type: Exact, value: /full } }]
    filters:
    - type: URLRewrite
      urlRewrite: { path: { type: ReplaceFullPath, replaceFullPath: /replaced } }
    backendRefs: [{ name: reviews-v1, port: PORT }]
`),
    );
    expect((await call(mesh, url('/strip/three'))).reply?.path).toBe('/three');
    expect((await call(mesh, url('/strip'))).reply?.path).toBe('/');
    const v1 = await call(mesh, url('/v1/books?page=2'));
    expect(v1.reply?.path).toBe('/api/v1/books?page=2');
    expect(v1.reply?.host).toBe('internal.example');
    expect((await call(mesh, url('/full'))).reply?.path).toBe('/replaced');
  });

  it('RequestMirror copies each request to the mirror Service; the caller gets the primary reply', async () => {
    const mirrored: string[] = [];
    pods.behave = (req, _res, pod) => {
      if (pod === MIRROR) mirrored.push(req.url ?? '');
      return false;
    };
    mesh = await start(
      route(`  - filters:
    - type: RequestMirror
      requestMirror: { backendRef: { name: mirror, port: PORT } }
    backendRefs: [{ name: reviews-v1, port: PORT }]
`),
    );
    expect((await call(mesh, url('/copy-me'))).reply?.pod).toBe(V1);
    await expect.poll(() => mirrored).toEqual(['/copy-me']);
  });

  it('timeouts.request cuts a slow upstream with 504', async () => {
    pods.behave = (_req, res, pod) => {
      if (pod !== V1) return false;
      const timer = setTimeout(() => res.end('late'), 2000);
      res.on('close', () => clearTimeout(timer));
      return true;
    };
    mesh = await start(
      route(`  - matches: [{ path: { value: /slow } }]
    timeouts: { request: 100ms }
    backendRefs: [{ name: reviews-v1, port: PORT }]
  - backendRefs: [{ name: reviews-v2, port: PORT }]
`),
    );
    const slow = await call(mesh, url('/slow'));
    expect(slow.status).toBe(504);
    expect(slow.text).toBe('upstream request timeout');
    expect((await call(mesh, url('/fast'))).reply?.pod).toBe(V2);
  });

  it('retry: the listed codes are retried (default retries leave a 500 alone)', async () => {
    const seen = new Map<string, number>();
    pods.behave = (req, res) => {
      const n = (seen.get(req.url ?? '') ?? 0) + 1;
      seen.set(req.url ?? '', n);
      if (n > 1) return false;
      res.statusCode = 500;
      res.end('first try fails');
      return true;
    };
    mesh = await start(
      route(`  - matches: [{ path: { value: /retried } }]
    retry: { attempts: 1, codes: [500], backoff: 1ms }
    backendRefs: [{ name: reviews-v1, port: PORT }]
  - backendRefs: [{ name: reviews-v1, port: PORT }]
`),
    );
    expect((await call(mesh, url('/retried'))).status).toBe(200);
    expect(seen.get('/retried')).toBe(2);
    expect((await call(mesh, url('/plain'))).status).toBe(500);
    expect(seen.get('/plain')).toBe(1);
  });

  it('a rule whose backends all weigh 0 answers 500, as the Gateway API requires', async () => {
    mesh = await start(
      route(`  - backendRefs: [{ name: reviews-v1, port: PORT, weight: 0 }]
`),
    );
    expect((await call(mesh, url('/'))).status).toBe(500);
  });

  it('a parentRef port applies the route to calls on that port only', async () => {
    mesh = await start(
      route(`  - backendRefs: [{ name: reviews-v1, port: PORT }]
`).replace('port: PORT }', 'port: 1 }'),
    );
    // Called on the pods' port, the route (for port 1) does not apply: the Service's default route does.
    expect((await call(mesh, url('/'))).reply?.pod).toBe(PLAIN);
    await mesh.close();
    mesh = await start(
      route(`  - backendRefs: [{ name: reviews-v1, port: PORT }]
`),
    );
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V1);
  });
});

describe('which routes apply to a caller (GAMMA, as Istio)', () => {
  const consumer = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews-for-web, namespace: web }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews, namespace: shop }]
  rules: [{ backendRefs: [{ name: reviews-v2, namespace: shop, port: PORT }] }]
---
`;
  const producer = route(`  - backendRefs: [{ name: reviews-v1, port: PORT }]
`).replace(', port: PORT }', ' }');

  it("a consumer route (the caller's namespace) beats the producer route; other namespaces get the producer route", async () => {
    mesh = await start(consumer + producer, 'web');
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V2);
    await mesh.close();
    mesh = await start(consumer + producer, 'other');
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V1);
  });

  it('a Gateway parent is skipped (ingress): the Service keeps its default route', async () => {
    mesh = await start(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: ingress, namespace: shop }
spec:
  parentRefs: [{ name: shop-gateway }]
  rules: [{ backendRefs: [{ name: reviews-v1, port: PORT }] }]
`);
    expect((await call(mesh, url('/'))).reply?.pod).toBe(PLAIN);
  });

  it('a VirtualService and an HTTPRoute for one host: the older wins, the other is reported', async () => {
    const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop, creationTimestamp: "2026-01-02T00:00:00Z" }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http: [{ route: [{ destination: { host: reviews-v2 } }] }]
---
`;
    const older = producer.replace('namespace: shop }', 'namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z" }');
    mesh = await start(vs + older);
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V1);
    const warning = mesh.snapshot.warnings.find((w) => w.code === 'conflicting-route-kinds');
    expect(warning?.resource).toEqual({ kind: 'VirtualService', namespace: 'shop', name: 'reviews' });
    expect(warning?.message).toMatch(/also claimed by HTTPRoute shop\/reviews, which wins/);
    expect(explain(mesh, 'GET', url('/')).route?.resource).toEqual({ kind: 'HTTPRoute', namespace: 'shop', name: 'reviews' });
  });
});

describe("a VirtualService and an HTTPRoute for one host, in Istio's order", () => {
  const vs = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-vs, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http: [{ route: [{ destination: { host: reviews-v2 } }] }]
---
`;
  const newerRoute = `apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: reviews, namespace: shop, creationTimestamp: "2026-02-01T00:00:00Z" }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews }]
  rules: [{ backendRefs: [{ name: reviews-v1, port: PORT }] }]
`;

  it('from another namespace, both public: the older VirtualService wins and the HTTPRoute is reported', async () => {
    mesh = await start(vs + newerRoute, 'web');
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V2);
    const warning = mesh.snapshot.warnings.find((w) => w.code === 'conflicting-route-kinds');
    expect(warning?.resource).toEqual({ kind: 'HTTPRoute', namespace: 'shop', name: 'reviews' });
    expect(warning?.path).toBe('spec.parentRefs[0]');
  });

  it("from the route's own namespace, the HTTPRoute comes first (Istio's consumer override)", async () => {
    mesh = await start(vs + newerRoute, 'shop');
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V1);
  });

  it("a VirtualService private to the caller's namespace beats the HTTPRoute", async () => {
    mesh = await start(vs.replace('spec:\n', 'spec:\n  exportTo: ["."]\n') + newerRoute, 'shop');
    expect((await call(mesh, url('/'))).reply?.pod).toBe(V2);
  });
});

describe('GRPCRoute attached to a Service', () => {
  it('routes by gRPC service and method, with header matches', async () => {
    mesh = await start(`apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: reviews, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews }]
  rules:
  - matches: [{ method: { service: shop.Reviews, method: Get } }]
    backendRefs: [{ name: reviews-v1, port: PORT }]
  - matches: [{ method: { service: shop.Reviews }, headers: [{ name: x-tier, value: gold }] }]
    backendRefs: [{ name: reviews-v2, port: PORT }]
`);
    const grpc = (path: string, headers: Record<string, string> = {}) =>
      mesh!.request(url(path), { method: 'POST', headers: { 'content-type': 'application/grpc', ...headers }, body: '' }).then(async (r) => ({
        status: r.statusCode,
        pod: r.headers['x-pod'],
        text: await r.body.text(),
      }));
    expect((await grpc('/shop.Reviews/Get')).pod).toBe(V1);
    expect((await grpc('/shop.Reviews/List', { 'x-tier': 'gold' })).pod).toBe(V2);
    expect((await grpc('/shop.Reviews/List')).status).not.toBe(200);
  });
});

describe('explain', () => {
  it('names the HTTPRoute and the rule that decided', async () => {
    mesh = await start(
      route(`  - matches: [{ path: { value: /a } }, { path: { value: /b } }]
    backendRefs: [{ name: reviews-v1, port: PORT }]
`),
    );
    const e = explain(mesh, 'GET', url('/b/1'));
    expect(e.route).toMatchObject({ path: 'spec.rules[0].matches[1]', resource: { kind: 'HTTPRoute', namespace: 'shop', name: 'reviews' } });
  });
});
