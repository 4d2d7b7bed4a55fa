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
  - name: split
    match: [{ uri: { prefix: /split } }]
    headers:
      request: { set: { x-route: split, x-conflict: route } }
      response: { set: { x-conflict: route } }
    route:
    - destination: { host: reviews, subset: v1 }
      weight: 50
      headers:
        request: { set: { x-dest: v1, x-conflict: v1 }, remove: [x-drop-v1] }
        response: { add: { x-served-by: v1 }, set: { x-conflict: v1 } }
    - destination: { host: reviews, subset: v2 }
      weight: 50
      headers:
        request: { add: { x-dest: v2 } }
        response: { add: { x-served-by: v2 }, remove: [x-pod] }
  - name: single
    match: [{ uri: { prefix: /single } }]
    headers:
      request: { set: { x-conflict: route, x-b: from-route }, remove: [x-b] }
      response: { set: { x-conflict: route } }
    route:
    - destination: { host: reviews, subset: v1 }
      headers:
        request: { set: { x-conflict: dest, host: ratings.internal } }
        response: { set: { x-conflict: dest } }
  - name: rewritten-authority
    match: [{ uri: { prefix: /authority } }]
    rewrite: { authority: route.internal }
    route:
    - destination: { host: reviews, subset: v1 }
      headers: { request: { set: { host: ignored.internal } } }
  - name: static
    match: [{ uri: { prefix: /static } }]
    directResponse: { status: 503, body: { string: down } }
    headers: { response: { set: { retry-after: "30" } } }
`;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  port = pods.port;
  mesh = await meshFromYaml(config(port), { namespace: 'shop', random: seededRandom(3) });
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
});

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await mesh.request(`http://reviews:${port}${path}`, { headers });
  const text = await res.body.text();
  const reply = res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as PodReply) : undefined;
  return { status: res.statusCode, headers: res.headers, text, reply };
}

describe('header operations per destination', () => {
  it('applies each weighted destination its own request and response rules', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const { reply, headers } = await get(`/split/${i}`, { 'x-drop-v1': 'x', 'x-dest': 'caller' });
      const pod = reply!.pod;
      seen.add(pod);
      expect(reply!.headers['x-route']).toBe('split');
      if (pod === '127.0.0.2') {
        expect(reply!.headers['x-dest']).toBe('v1');
        expect(reply!.headers['x-drop-v1']).toBeUndefined();
        expect(headers['x-served-by']).toBe('v1');
        expect(headers['x-pod']).toBe('127.0.0.2');
      } else {
        // `add` appends to what the caller sent.
        expect(reply!.headers['x-dest']).toBe('caller, v2');
        expect(reply!.headers['x-drop-v1']).toBe('x');
        expect(headers['x-served-by']).toBe('v2');
        expect(headers['x-pod']).toBeUndefined();
      }
      // Several destinations: Envoy evaluates the weighted cluster's rules, then the route's.
      expect(reply!.headers['x-conflict']).toBe('route');
      expect(headers['x-conflict']).toBe('route');
    }
    expect(seen.size).toBe(2);
  });

  it("merges a lone destination's rules after the route's, and turns a Host rule into the authority", async () => {
    const { reply, headers } = await get('/single', { 'x-b': 'from-caller' });
    // One destination: istiod appends its rules to the route's, so the destination's `set` wins.
    expect(reply!.headers['x-conflict']).toBe('dest');
    expect(headers['x-conflict']).toBe('dest');
    // Removals come first (Envoy), so a header both removed and set ends up set.
    expect(reply!.headers['x-b']).toBe('from-route');
    expect(reply!.host).toBe('ratings.internal');
  });

  it('prefers the route-level authority rewrite over a destination Host rule', async () => {
    const { reply } = await get('/authority');
    expect(reply!.host).toBe('route.internal');
  });

  it('shows response rules to fetch callers too', async () => {
    const res = await mesh.fetch(`http://reviews:${port}/single`);
    await res.arrayBuffer();
    expect(res.headers.get('x-conflict')).toBe('dest');
  });

  it("adds the route's response rules to a direct response", async () => {
    const res = await get('/static');
    expect(res.status).toBe(503);
    expect(res.text).toBe('down');
    expect(res.headers['retry-after']).toBe('30');
  });
});
