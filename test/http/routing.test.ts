import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';

let pods: Pods;
let mesh: Mesh;
let port: number;

const config = (p: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${p}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v1 } }
  - { address: 127.0.0.4, labels: { version: v2 } }
  - { address: 127.0.0.5, labels: { version: v3 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
  - { name: v3, labels: { version: v3 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: tester
    match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
    headers:
      request: { set: { x-routed-by: tester }, remove: [x-secret] }
      response: { add: { x-mesh: sidecarless } }
  - name: legacy
    match: [{ uri: { prefix: /api/v1/ } }]
    rewrite: { uri: /v2/ }
    route: [{ destination: { host: reviews, subset: v3 } }]
  - name: regex-rewrite
    match: [{ uri: { prefix: /items/ } }]
    rewrite: { uriRegexRewrite: { match: "^/items/([0-9]+)$", rewrite: "/catalog/\\\\1" } }
    route: [{ destination: { host: reviews, subset: v3 } }]
  - name: moved
    match: [{ uri: { exact: /old } }]
    redirect: { uri: /new, redirectCode: 308 }
  - name: static
    match: [{ uri: { exact: /health } }]
    directResponse: { status: 200, body: { string: "mesh ok" } }
  - name: broken
    match: [{ uri: { prefix: /broken } }]
    fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - name: flaky
    match: [{ uri: { prefix: /flaky } }]
    fault: { abort: { httpStatus: 500, percentage: { value: 30 } } }
    route: [{ destination: { host: reviews, subset: v1 } }]
  - name: only-get
    match: [{ uri: { prefix: /only-get }, method: { exact: GET } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - name: canary
    match: [{ uri: { prefix: / } }]
    route:
    - { destination: { host: reviews, subset: v1 }, weight: 80 }
    - { destination: { host: reviews, subset: v3 }, weight: 20 }
`;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  port = pods.port;
  mesh = await meshFromYaml(config(port), { namespace: 'shop', random: seededRandom(42) });
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
});

async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await mesh.request(`http://reviews:${port}${path}`, { method: method as 'GET', headers });
  const text = await res.body.text();
  const reply = res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as PodReply) : undefined;
  return { status: res.statusCode, headers: res.headers, text, reply };
}

describe('outbound HTTP through the mesh', () => {
  it('splits 80/20 between subsets over 1,000 requests within ±3 points', async () => {
    // Seeded: the same 1,000 draws every run. ±3 points is over 2σ of 1,000 draws at 80 %, and
    // far from any wrong split (50/50, 100/0, 20/80).
    const counts = new Map<string, number>();
    for (let i = 0; i < 1_000; i++) {
      const { reply } = await get(`/reviews/${i}`);
      counts.set(reply!.pod, (counts.get(reply!.pod) ?? 0) + 1);
    }
    const v1 = (counts.get('127.0.0.2') ?? 0) + (counts.get('127.0.0.3') ?? 0);
    const v3 = counts.get('127.0.0.5') ?? 0;
    expect(v1 + v3).toBe(1_000);
    expect(Math.abs(v1 / 10 - 80)).toBeLessThanOrEqual(3);
    expect(counts.get('127.0.0.4')).toBeUndefined();
    // ROUND_ROBIN inside subset v1: its two pods share evenly.
    expect(Math.abs((counts.get('127.0.0.2') ?? 0) - (counts.get('127.0.0.3') ?? 0))).toBeLessThanOrEqual(2);
  });

  it('routes on headers and keeps the service name as the Host the pod sees', async () => {
    for (let i = 0; i < 20; i++) {
      const { reply } = await get('/reviews/1', { 'end-user': 'jason' });
      expect(reply?.pod).toBe('127.0.0.4');
      expect(reply?.host).toBe(`reviews:${port}`);
    }
  });

  it('matches a header however the caller writes it: any case, an array of values, a flat list', async () => {
    type Headers = NonNullable<NonNullable<Parameters<Mesh['request']>[1]>['headers']>;
    const podFor = async (headers: Headers) => {
      const res = await mesh.request(`http://reviews:${port}/reviews/1`, { headers });
      return ((await res.body.json()) as PodReply).pod;
    };
    // The tester route (subset v2: 127.0.0.4) for every spelling of `end-user: jason`...
    expect(await podFor({ 'end-user': 'jason', accept: 'application/json' })).toBe('127.0.0.4');
    expect(await podFor({ 'End-User': 'jason', Accept: 'application/json' })).toBe('127.0.0.4');
    expect(await podFor({ 'end-user': ['jason'] })).toBe('127.0.0.4');
    expect(await podFor(['end-user', 'jason', 'accept', 'application/json'])).toBe('127.0.0.4');
    // ...and not for two values (Envoy matches the comma-joined value) or another header.
    for (const headers of [{ 'end-user': ['jason', 'ann'] }, { 'end-user-id': 'jason' }, {}]) {
      expect(['127.0.0.2', '127.0.0.3', '127.0.0.5']).toContain(await podFor(headers));
    }
  });

  it('applies request and response header operations', async () => {
    const { reply, headers } = await get('/x', { 'end-user': 'jason', 'x-secret': 'hunter2' });
    expect(reply?.headers['x-routed-by']).toBe('tester');
    expect(reply?.headers['x-secret']).toBeUndefined();
    expect(headers['x-mesh']).toBe('sidecarless');
  });

  it('rewrites a matched prefix and keeps the query string', async () => {
    const { reply } = await get('/api/v1/books?page=2');
    expect(reply?.pod).toBe('127.0.0.5');
    expect(reply?.path).toBe('/v2/books?page=2');
  });

  it('rewrites with a regex and capture groups', async () => {
    const { reply } = await get('/items/42');
    expect(reply?.path).toBe('/catalog/42');
  });

  it('answers redirects and direct responses without touching a pod', async () => {
    const moved = await get('/old?x=1');
    expect(moved.status).toBe(308);
    expect(moved.headers.location).toBe(`http://reviews:${port}/new?x=1`);
    const health = await get('/health');
    expect(health.status).toBe(200);
    expect(health.text).toBe('mesh ok');
  });

  it('injects aborts at the configured percentage', async () => {
    expect((await get('/broken')).status).toBe(503);
    let failed = 0;
    for (let i = 0; i < 2_000; i++) if ((await get('/flaky')).status === 500) failed++;
    expect(Math.abs(failed / 20 - 30)).toBeLessThanOrEqual(3);
  }, 60_000);

  it('answers 404 when no route matches, as Envoy does', async () => {
    const mesh2 = await meshFromYaml(config(port).replace(/ {2}- name: canary[\s\S]*$/, ''), { namespace: 'shop' });
    try {
      const res = await mesh2.request(`http://reviews:${port}/nothing`);
      expect(res.statusCode).toBe(404);
      await res.body.dump();
    } finally {
      await mesh2.close();
    }
  });

  it('works through mesh.fetch with Request objects and streaming bodies', async () => {
    const body = new ReadableStream({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('hello'));
        controller.close();
      },
    });
    const res = await mesh.fetch(
      new Request(`http://reviews.shop:${port}/reviews/7`, { method: 'POST', body, duplex: 'half', headers: { 'end-user': 'jason' } } as RequestInit),
    );
    const reply = (await res.json()) as PodReply;
    expect(reply.pod).toBe('127.0.0.4');
    expect(reply.method).toBe('POST');
  });
});
