import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';

// 127.0.0.2 serves reviews, .3 the mirror, .4 audit, .5 a pod that never answers; nothing
// listens on .9.
let pods: Pods;
let log: RequestLog;
let mesh: Mesh;
let port: number;

const serviceEntry = (name: string, address: string, p: number) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${p}, name: http, protocol: HTTP }]
  endpoints: [{ address: ${address} }]
---`;

const config = (p: number) => `
${serviceEntry('reviews', '127.0.0.2', p)}
${serviceEntry('mirror', '127.0.0.3', p)}
${serviceEntry('audit', '127.0.0.4', p)}
${serviceEntry('slow', '127.0.0.5', p)}
${serviceEntry('dead', '127.0.0.9', p)}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: copy-all
    match: [{ uri: { prefix: /all } }]
    rewrite: { uri: /rewritten }
    headers: { request: { set: { x-routed: "yes" } } }
    route: [{ destination: { host: reviews } }]
    mirror: { host: mirror }
  - name: split
    match: [{ uri: { prefix: /split } }]
    route: [{ destination: { host: reviews } }]
    mirrors:
    - { destination: { host: mirror }, percentage: { value: 30 } }
    - { destination: { host: audit }, percentage: { value: 10 } }
  - name: legacy
    match: [{ uri: { prefix: /legacy } }]
    route: [{ destination: { host: reviews } }]
    mirror: { host: mirror }
    mirrorPercent: 50
  - name: zero
    match: [{ uri: { prefix: /zero } }]
    route: [{ destination: { host: reviews } }]
    mirror: { host: mirror }
    mirrorPercentage: { value: 0 }
  - name: unreachable-mirrors
    match: [{ uri: { prefix: /unreachable } }]
    route: [{ destination: { host: reviews } }]
    mirrors:
    - { destination: { host: slow } }
    - { destination: { host: dead } }
`;

/** Counts requests the mesh's pools create, per pod address: mirrors are dispatched synchronously. */
class CreatedRequests {
  readonly byAddress = new Map<string, number>();
  private readonly listener = (message: unknown) => {
    const origin = String((message as { request: { origin: unknown } }).request.origin);
    const address = new URL(origin).hostname;
    this.byAddress.set(address, (this.byAddress.get(address) ?? 0) + 1);
  };
  constructor() {
    subscribe('undici:request:create', this.listener);
  }
  get(address: string): number {
    return this.byAddress.get(address) ?? 0;
  }
  close(): void {
    unsubscribe('undici:request:create', this.listener);
  }
}

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']);
  port = pods.port;
  log = new RequestLog(pods);
  // The slow pod takes every request and never answers.
  log.take = (seen) => seen.pod === '127.0.0.5';
  mesh = await meshFromYaml(config(port), { namespace: 'shop', random: seededRandom(11) });
});
afterAll(async () => {
  // Pods first: the stuck pod holds mirrored requests open, and a pool closes once they end.
  await pods.close();
  await mesh.close();
});

async function get(path: string, init: { method?: string; body?: string | Buffer | Readable; headers?: Record<string, string> } = {}) {
  const res = await mesh.request(`http://reviews:${port}${path}`, {
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers ?? {},
    ...(init.body !== undefined ? { body: init.body } : {}),
  });
  const text = await res.body.text();
  return { status: res.statusCode, text, pod: res.headers['x-pod'] };
}

describe('request mirroring', () => {
  it('sends a copy with the final path and headers to the mirror, its authority suffixed -shadow', async () => {
    log.clear();
    const res = await get('/all/books?page=2', { method: 'POST', body: 'hello', headers: { 'x-caller': 'test' } });
    expect(res.status).toBe(200);
    expect(res.pod).toBe('127.0.0.2');
    await log.until(() => log.count((s) => s.pod === '127.0.0.3') === 1);
    const [copy] = log.seen.filter((s) => s.pod === '127.0.0.3');
    const [primary] = log.seen.filter((s) => s.pod === '127.0.0.2');
    expect(primary?.host).toBe(`reviews:${port}`);
    expect(copy?.host).toBe(`reviews-shadow:${port}`);
    expect(copy?.path).toBe('/rewritten/books?page=2');
    expect(copy?.method).toBe('POST');
    expect(copy?.headers['x-routed']).toBe('yes');
    expect(copy?.headers['x-caller']).toBe('test');
    // The body (a string: replayable) went with it.
    const body = await copy!.body;
    expect(body).toBe('hello');
  });

  it('mirrors the configured shares (one draw per request for every mirror), within ±3 points over 2,000 requests', async () => {
    log.clear();
    const created = new CreatedRequests();
    try {
      for (let i = 0; i < 2_000; i++) expect((await get(`/split/${i}`)).status).toBe(200);
      const toMirror = created.get('127.0.0.3');
      const toAudit = created.get('127.0.0.4');
      expect(Math.abs(toMirror / 20 - 30)).toBeLessThanOrEqual(3);
      expect(Math.abs(toAudit / 20 - 10)).toBeLessThanOrEqual(3);
      // Every copy sent reaches its pod (waiting on the pods' requests, not on time).
      const at = (pod: string) => log.count((s) => s.pod === pod && s.path.startsWith('/split/'));
      await log.until(() => at('127.0.0.3') === toMirror && at('127.0.0.4') === toAudit);
      // One draw decides for every mirror: whoever was copied to audit (10%) was copied to mirror (30%).
      const mirrored = new Set(log.seen.filter((s) => s.pod === '127.0.0.3').map((s) => s.path));
      expect(log.seen.filter((s) => s.pod === '127.0.0.4').every((s) => mirrored.has(s.path))).toBe(true);
    } finally {
      created.close();
    }
  }, 60_000);

  it('reads the deprecated integer mirrorPercent, and an explicit 0% mirrors nothing', async () => {
    const created = new CreatedRequests();
    try {
      for (let i = 0; i < 1_000; i++) await get(`/legacy/${i}`);
      expect(Math.abs(created.get('127.0.0.3') / 10 - 50)).toBeLessThanOrEqual(4);
      const before = created.get('127.0.0.3');
      for (let i = 0; i < 200; i++) await get(`/zero/${i}`);
      expect(created.get('127.0.0.3')).toBe(before);
    } finally {
      created.close();
    }
  }, 60_000);

  it('answers the caller while a mirror is stuck or unreachable, and the failures stay with the copies', async () => {
    log.clear();
    for (let i = 0; i < 5; i++) {
      const res = await get(`/unreachable/${i}`);
      expect(res.status).toBe(200);
      expect(res.pod).toBe('127.0.0.2');
    }
    // The stuck pod got every copy and answered none: the caller never waited for it.
    await log.until(() => log.count((s) => s.pod === '127.0.0.5') === 5);
    expect(log.seen.filter((s) => s.pod === '127.0.0.5').every((s) => !s.res.headersSent)).toBe(true);
  });

  it('does not mirror a streamed body (it would have to be buffered); the request itself goes through', async () => {
    const created = new CreatedRequests();
    try {
      const res = await get('/all/upload', { method: 'POST', body: Readable.from(['chunk-1', 'chunk-2']) });
      expect(res.status).toBe(200);
      expect(created.get('127.0.0.2')).toBe(1);
      expect(created.get('127.0.0.3')).toBe(0);
      // A Buffer is replayable: mirrored.
      await get('/all/upload', { method: 'POST', body: Buffer.from('bytes') });
      expect(created.get('127.0.0.3')).toBe(1);
    } finally {
      created.close();
    }
  });
});

describe("a mirror's copies are requests of the mirror service like any other (as Envoy's shadows are)", () => {
  let shadowPods: Pods;
  let shadowMesh: Mesh;
  const seen = new Map<string, number>();

  beforeAll(async () => {
    shadowPods = await Pods.start(['127.0.0.6', '127.0.0.7', '127.0.0.8']);
    // 127.0.0.8 serves reviews; of the mirror's two pods, .6 answers every copy with a 503.
    shadowPods.behave = (req, res, pod) => {
      if (pod === '127.0.0.8') return false;
      seen.set(pod, (seen.get(pod) ?? 0) + 1);
      if (pod !== '127.0.0.6') return false;
      res.writeHead(503).end('unavailable');
      return true;
    };
    const p = shadowPods.port;
    shadowMesh = await meshFromYaml(
      `
${serviceEntry('reviews', '127.0.0.8', p)}
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shadow, namespace: shop }
spec:
  hosts: [shadow.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${p}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.6 }, { address: 127.0.0.7 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shadow, namespace: shop }
spec:
  host: shadow
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: { consecutive5xxErrors: 2, interval: 1h, baseEjectionTime: 1h, maxEjectionPercent: 50 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews } }]
    mirror: { host: shadow }
`,
      { namespace: 'shop', random: seededRandom(5) },
    );
  });
  afterAll(async () => {
    await shadowPods.close();
    await shadowMesh.close();
  });

  it("feeds the mirror service's outlier detection: the pod that fails the copies is ejected and later copies go to the other", async () => {
    const ejected: string[] = [];
    shadowMesh.on('ejection', (event) => {
      if (event.action === 'eject') ejected.push(event.endpoint);
    });
    for (let i = 0; i < 20; i++) {
      const res = await shadowMesh.request(`http://reviews:${shadowPods.port}/copy/${i}`);
      await res.body.text();
      expect(res.statusCode).toBe(200);
      // Each copy reaches its pod before the next request, and once .6 has failed two, the mesh
      // has ejected it (from those answers) before the next copy is picked.
      await until(() => (seen.get('127.0.0.6') ?? 0) + (seen.get('127.0.0.7') ?? 0) > i);
      if (seen.get('127.0.0.6') === 2) await until(() => ejected.length > 0);
    }
    expect(ejected).toEqual([`127.0.0.6:${shadowPods.port}`]);
    // Round robin alternates until .6 has failed two copies in a row; then it is ejected.
    expect(seen.get('127.0.0.6')).toBe(2);
    expect(seen.get('127.0.0.7')).toBe(18);
  });
});

function until(done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (done()) resolve();
      else setImmediate(check);
    };
    check();
  });
}
