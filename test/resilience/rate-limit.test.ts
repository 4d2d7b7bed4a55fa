import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { RateLimitedError } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { TestClock } from '../helpers/test-clock.js';

let pods: Pods;
let otherPort: Pods;
let mesh: Mesh;
let port: number;
let port2: number;
const clock = new TestClock({ now: 10_000 });
/** Requests each pod path received, by the first path segment. */
const hits = new Map<string, number>();

const service = (name: string, address: string, ports: number[] = [port], labels = '') => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [${ports.map((p) => `{ number: ${p}, name: http-${p}, protocol: HTTP }`).join(', ')}]
  endpoints: [{ address: ${address}${labels} }]
`;

const config = () => `
${service('burst', '127.0.0.2')}
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: burst, namespace: shop }
spec:
  host: burst
  limits:
  - name: all
    tokenBucket: { maxTokens: 3, tokensPerFill: 2, fillInterval: 10s }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v2 } }
---
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
  - name: checkout
    match: [{ uri: { prefix: /checkout } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - name: canary
    match: [{ headers: { x-version: { exact: v2 } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - name: browse
    route: [{ destination: { host: reviews, subset: v1 } }]
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  limits:
  - name: checkout
    match: { routes: [checkout] }
    tokenBucket: { maxTokens: 1, fillInterval: 1h }
  - name: canary-subset
    match: { subsets: [v2] }
    tokenBucket: { maxTokens: 2, fillInterval: 1h }
  - name: deletes
    match: { methods: [DELETE], headers: { x-tenant: { prefix: gold } } }
    tokenBucket: { maxTokens: 1, fillInterval: 1h }
  - name: typo
    match: { routes: [chekout] }
    tokenBucket: { maxTokens: 1, fillInterval: 1h }
---
${service('multi', '127.0.0.4', [port, port2])}
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: multi, namespace: shop }
spec:
  host: multi
  limits:
  - match: { ports: [${port2}] }
    tokenBucket: { maxTokens: 1, fillInterval: 1h }
---
${service('keyed', '127.0.0.2')}
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: keyed, namespace: shop }
spec:
  host: keyed
  limits:
  - name: per-user
    key: { header: x-user }
    tokenBucket: { maxTokens: 2, fillInterval: 1m }
  - name: per-tenant
    key: { queryParameter: tenant }
    match: { methods: [POST] }
    tokenBucket: { maxTokens: 1, fillInterval: 1m }
---
${service('free', '127.0.0.3')}
`;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  port = pods.port;
  otherPort = await Pods.start(['127.0.0.4']);
  port2 = otherPort.port;
  for (const p of [pods, otherPort]) {
    p.behave = (req) => {
      const first = (req.url ?? '/').split('/')[1] ?? '';
      hits.set(first, (hits.get(first) ?? 0) + 1);
      return false;
    };
  }
  mesh = await meshFromYaml(config(), { namespace: 'shop', clock, random: seededRandom(1), dns: false });
});
afterAll(async () => {
  await mesh?.close();
  await pods?.close();
  await otherPort?.close();
});

async function get(url: string, init: RequestInit = {}) {
  const res = await mesh.fetch(url, init as Parameters<Mesh['fetch']>[1]);
  const body = await res.text();
  return { status: res.status, headers: res.headers, body };
}

async function statuses(n: number, url: string, init: RequestInit = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(url, init)).status);
  return out;
}

describe('a token bucket per limit', () => {
  it('admits the burst, then answers 429 without touching the network, with retry-after and x-ratelimit headers', async () => {
    hits.set('b', 0);
    expect(await statuses(3, `http://burst:${port}/b/1`)).toEqual([200, 200, 200]);
    const refused = await get(`http://burst:${port}/b/2`);
    expect(refused.status).toBe(429);
    expect(refused.body).toBe('local_rate_limited');
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(refused.headers.get('x-ratelimit-limit')).toBe('3');
    expect(refused.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('x-ratelimit-reset')).toBe('10');
    expect(hits.get('b')).toBe(3);
  });

  it('adds tokensPerFill every fillInterval, capped at maxTokens', async () => {
    clock.advance(4_000);
    const early = await get(`http://burst:${port}/b/3`);
    expect(early.status).toBe(429);
    expect(early.headers.get('retry-after')).toBe('6');
    clock.advance(6_000);
    expect(await statuses(3, `http://burst:${port}/b/4`)).toEqual([200, 200, 429]);
    clock.advance(60_000);
    expect(await statuses(4, `http://burst:${port}/b/5`)).toEqual([200, 200, 200, 429]);
  });

  it('leaves hosts without a policy alone', async () => {
    expect(await statuses(20, `http://free:${port}/f`)).toEqual(Array(20).fill(200));
  });
});

describe('what a limit applies to', () => {
  it('a route limit applies only to the named VirtualService route', async () => {
    expect(await statuses(2, `http://reviews:${port}/checkout`)).toEqual([200, 429]);
    expect(await statuses(5, `http://reviews:${port}/browse`)).toEqual([200, 200, 200, 200, 200]);
  });

  it('a subset limit applies to requests routed to that subset', async () => {
    const v2 = { headers: { 'x-version': 'v2' } };
    expect(await statuses(3, `http://reviews:${port}/canary`, v2)).toEqual([200, 200, 429]);
    expect(await statuses(3, `http://reviews:${port}/browse`)).toEqual([200, 200, 200]);
  });

  it('a port limit applies to that destination port only', async () => {
    expect(await statuses(2, `http://multi:${port2}/m`)).toEqual([200, 429]);
    expect(await statuses(4, `http://multi:${port}/m`)).toEqual([200, 200, 200, 200]);
  });

  it('warns about a route name no VirtualService route has', () => {
    const warnings = mesh.snapshot.warnings.filter((w) => w.code === 'unknown-route');
    expect(warnings.map((w) => `${w.resource?.name} ${w.path}: ${w.message}`)).toEqual([
      'reviews spec.limits[3].match.routes[0]: route "chekout" is not an http route of VirtualService shop/reviews for host "reviews.shop.svc.cluster.local" (routes: checkout, canary, browse); the limit never applies to it',
    ]);
  });

  it('methods and headers must all match', async () => {
    const gold = { method: 'DELETE', headers: { 'x-tenant': 'gold-1' } };
    expect(await statuses(2, `http://reviews:${port}/browse/1`, gold)).toEqual([200, 429]);
    expect(await statuses(2, `http://reviews:${port}/browse/1`, { method: 'DELETE', headers: { 'x-tenant': 'silver' } })).toEqual([200, 200]);
    expect(await statuses(2, `http://reviews:${port}/browse/1`, { headers: { 'x-tenant': 'gold-1' } })).toEqual([200, 200]);
  });
});

describe('keyed limits', () => {
  it('give each header value its own bucket; requests without the header share one', async () => {
    const as = (user: string) => ({ headers: { 'x-user': user } });
    expect(await statuses(3, `http://keyed:${port}/k`, as('alice'))).toEqual([200, 200, 429]);
    expect(await statuses(3, `http://keyed:${port}/k`, as('bob'))).toEqual([200, 200, 429]);
    expect(await statuses(3, `http://keyed:${port}/k`)).toEqual([200, 200, 429]);
    // tokensPerFill defaults to 1, as in Envoy: one minute gives alice one token back.
    clock.advance(60_000);
    expect(await statuses(2, `http://keyed:${port}/k`, as('alice'))).toEqual([200, 429]);
  });

  it('keys by a query parameter', async () => {
    clock.advance(60_000);
    const post = (tenant: string, user: string) => get(`http://keyed:${port}/k?tenant=${tenant}`, { method: 'POST', headers: { 'x-user': user } });
    expect((await post('acme', 'u1')).status).toBe(200);
    expect((await post('acme', 'u2')).status).toBe(429);
    expect((await post('globex', 'u3')).status).toBe(200);
  });
});

describe('mesh.request', () => {
  it('rejects a refused request with a typed RateLimitedError naming the limit', async () => {
    clock.advance(3_600_000);
    hits.set('checkout', 0);
    const first = await mesh.request(`http://reviews:${port}/checkout`);
    expect(first.statusCode).toBe(200);
    await first.body.dump();
    const error = await mesh.request(`http://reviews:${port}/checkout`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RateLimitedError);
    expect((error as RateLimitedError).code).toBe('ERR_MESH_RATE_LIMITED');
    expect((error as RateLimitedError).limit).toBe('shop/reviews/checkout');
    // Fills fall on the bucket's own phase (it was created earlier): at most one interval away.
    expect((error as RateLimitedError).retryAfterMs).toBeGreaterThan(0);
    expect((error as RateLimitedError).retryAfterMs).toBeLessThanOrEqual(3_600_000);
    expect(hits.get('checkout')).toBe(1);
  });

  it('answers a refused gRPC call the way Envoy does: 200, grpc-status UNAVAILABLE', async () => {
    const res = await mesh.fetch(`http://reviews:${port}/checkout`, { method: 'POST', headers: { 'content-type': 'application/grpc' }, body: '' });
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get('grpc-status')).toBe('14');
    expect(res.headers.get('grpc-message')).toBe('local_rate_limited');
  });
});
