import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';

const PODS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
let pods: Pods;
let mesh: Mesh;
let port: number;

/** A service on all four pods with a consistent-hash DestinationRule. */
const hashed = (name: string, consistentHash: string, p: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${p}, name: http, protocol: HTTP }]
  endpoints: [${PODS.map((a) => `{ address: ${a} }`).join(', ')}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop }
spec:
  host: ${name}
  trafficPolicy: { loadBalancer: { consistentHash: ${consistentHash} } }
---`;

const config = (p: number) =>
  [
    hashed('cart', '{ httpCookie: { name: session, path: /, ttl: 60s } }', p),
    hashed('basket', '{ httpCookie: { name: basket, ttl: 0s, attributes: [{ name: SameSite, value: Strict }, { name: Secure }] } }', p),
    hashed('wishlist', '{ httpCookie: { name: wish } }', p),
    hashed('profile', '{ httpHeaderName: x-user }', p),
    hashed('search', '{ httpQueryParameterName: user, maglev: { tableSize: 65537 } }', p),
  ].join('\n');

beforeAll(async () => {
  pods = await Pods.start(PODS);
  port = pods.port;
  mesh = await meshFromYaml(config(port), { namespace: 'shop', random: seededRandom(23) });
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
});

async function call(service: string, path = '/', headers: Record<string, string> = {}) {
  const res = await mesh.request(`http://${service}:${port}${path}`, { headers });
  await res.body.dump();
  const setCookie = res.headers['set-cookie'];
  return { status: res.statusCode, pod: String(res.headers['x-pod']), setCookie: Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [] };
}

describe('consistent hashing by cookie', () => {
  it('issues a cookie when the request has none and ttl is set, and routes by it', async () => {
    const first = await call('cart');
    expect(first.setCookie).toHaveLength(1);
    const match = /^session="([0-9a-f]{16})"; Max-Age=60; Path=\/; HttpOnly$/.exec(first.setCookie[0]!);
    expect(match).not.toBeNull();
    const value = match![1]!;
    // The cookie, sent back quoted as issued or bare, keeps every request on the pod that issued it.
    for (let i = 0; i < 50; i++) {
      const again = await call('cart', `/items/${i}`, { cookie: i % 2 ? `other=1; session="${value}"` : `session=${value}` });
      expect(again.pod).toBe(first.pod);
      // A request that has the cookie is not given another.
      expect(again.setCookie).toEqual([]);
    }
  });

  it('gives cookie-less requests fresh cookies that spread over the pods, each sticky', async () => {
    const issued: { value: string; pod: string }[] = [];
    for (let i = 0; i < 200; i++) {
      const res = await call('cart');
      issued.push({ value: /session="([0-9a-f]+)"/.exec(res.setCookie[0]!)![1]!, pod: res.pod });
    }
    expect(new Set(issued.map((c) => c.value)).size).toBe(200);
    const perPod = new Map<string, number>();
    for (const c of issued) perPod.set(c.pod, (perPod.get(c.pod) ?? 0) + 1);
    expect(perPod.size).toBe(4);
    for (const c of issued.slice(0, 40)) expect((await call('cart', '/', { cookie: `session="${c.value}"` })).pod).toBe(c.pod);
  });

  it('issues a session cookie for ttl 0 (no Max-Age), with the extra attributes', async () => {
    const res = await call('basket');
    expect(res.setCookie[0]).toMatch(/^basket="[0-9a-f]{16}"; SameSite=Strict; Secure; HttpOnly$/);
  });

  it('issues nothing without ttl: a request without the cookie is balanced as usual', async () => {
    const res = await call('wishlist');
    expect(res.status).toBe(200);
    expect(res.setCookie).toEqual([]);
    const pod = (await call('wishlist', '/', { cookie: 'wish=abc' })).pod;
    for (let i = 0; i < 20; i++) expect((await call('wishlist', '/', { cookie: 'wish=abc' })).pod).toBe(pod);
  });

  it('shows the issued cookie to fetch callers (Headers.getSetCookie)', async () => {
    const res = await mesh.fetch(`http://cart:${port}/`);
    await res.arrayBuffer();
    expect(res.headers.getSetCookie()).toHaveLength(1);
    expect(res.headers.getSetCookie()[0]).toMatch(/^session="[0-9a-f]{16}"; Max-Age=60; Path=\/; HttpOnly$/);
  });
});

describe('consistent hashing by header and query parameter', () => {
  it('keeps one header value on one pod, and spreads different values', async () => {
    const home = (await call('profile', '/', { 'x-user': 'jason' })).pod;
    for (let i = 0; i < 50; i++) expect((await call('profile', `/p/${i}`, { 'x-user': 'jason' })).pod).toBe(home);
    const pods = new Set<string>();
    for (let i = 0; i < 100; i++) pods.add((await call('profile', '/', { 'x-user': `user-${i}` })).pod);
    expect(pods.size).toBe(4);
  });

  it('keeps one query value on one pod (Maglev), and spreads different values', async () => {
    const home = (await call('search', '/?user=jason&page=1')).pod;
    for (let i = 0; i < 50; i++) expect((await call('search', `/?page=${i}&user=jason`)).pod).toBe(home);
    const pods = new Set<string>();
    for (let i = 0; i < 100; i++) pods.add((await call('search', `/?user=u${i}`)).pod);
    expect(pods.size).toBe(4);
  });
});
