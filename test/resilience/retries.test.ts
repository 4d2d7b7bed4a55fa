import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { MeshConfigError, RESPONSE_FLAGS_HEADER, runWithDeadline } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import type { SeenRequest } from '../helpers/request-log.js';
import { RequestLog } from '../helpers/request-log.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';

/**
 * Retries as istiod configures Envoy: the default policy when a route has none, VirtualService
 * `retries` otherwise. Pods: .2 and .3 serve; .9 has nothing listening (connection refused).
 * Each test says how a pod misbehaves through `log.take`.
 */
let pods: Pods;
let log: RequestLog;
let port: number;
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  log = new RequestLog(pods);
  port = pods.port;
});

afterEach(async () => {
  log.take = undefined;
  log.clear();
  await Promise.all(meshes.splice(0).map((m) => m.close()));
});

afterAll(async () => {
  await pods.close();
});

function serviceEntry(addresses: readonly string[]): string {
  return `
${reviewsServiceEntry(port, addresses)}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
`;
}

function route(retries: string | undefined, extra = ''): string {
  return `
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews } }]
${retries === undefined ? '' : `    retries: ${retries}\n`}${extra}`;
}

async function mesh(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  const m = await meshFromYaml(yaml, { namespace: 'shop', random: seededRandom(7), ...options });
  meshes.push(m);
  return m;
}

/** Answers `status` (with `headers`) for requests `test` selects; the rest are served normally. */
function answer(test: (s: SeenRequest) => boolean, status: number, headers: Record<string, string> = {}): void {
  log.take = (s) => {
    if (!test(s)) return false;
    s.res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    s.res.end(`pod ${s.pod} says ${status}`);
    return true;
  };
}

/** Resolves when the connection that carried `seen` is closed (the mesh gave up on it). */
function connectionClosed(seen: SeenRequest): Promise<void> {
  const socket = seen.req.socket;
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

async function get(m: Mesh, path = '/'): Promise<{ status: number; pod: string | null; body: string }> {
  const res = await m.fetch(`http://reviews:${port}${path}`);
  return { status: res.status, pod: res.headers.get('x-pod'), body: await res.text() };
}

async function statuses(m: Mesh, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(m)).status);
  return out;
}

describe("Istio's default retry policy (no retries on the route, or no VirtualService)", () => {
  it('retries a 503 on the other pod: 20 requests, one pod always 503, no failure seen', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']));
    answer((s) => s.pod === '127.0.0.2', 503);
    const seen = await statuses(m, 20);
    expect(seen.filter((s) => s !== 200)).toEqual([]);
    // The failing pod was tried (round robin sends it every other first attempt), then avoided.
    expect(log.count((s) => s.pod === '127.0.0.2')).toBeGreaterThanOrEqual(9);
  });

  it('applies the default under a VirtualService route without retries', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']) + route(undefined));
    answer((s) => s.pod === '127.0.0.2', 503);
    expect((await statuses(m, 10)).filter((s) => s !== 200)).toEqual([]);
  });

  it('does not retry a 500: the default retries 503 only', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']));
    answer(() => true, 500);
    const r = await get(m);
    expect(r.status).toBe(500);
    expect(log.seen).toHaveLength(1);
  });

  it('stops after 2 retries: a request to an always-503 pod is sent 3 times and the caller gets the 503', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']));
    answer(() => true, 503);
    const r = await get(m);
    expect(r.status).toBe(503);
    expect(r.body).toBe('pod 127.0.0.2 says 503');
    expect(log.seen).toHaveLength(3);
  });

  it('retries a connection refused by a dead pod: 10 requests, one endpoint refuses, none fail', async () => {
    const m = await mesh(serviceEntry(['127.0.0.9', '127.0.0.3']));
    const seen = await statuses(m, 10);
    expect(seen).toEqual(Array(10).fill(200));
    expect(log.count((s) => s.pod === '127.0.0.3')).toBe(10);
  });

  it('answers a retry that finds no endpoint left 503 no healthy upstream (UH), as Envoy does, not with the failure retried', async () => {
    // The only endpoint refuses; outlier detection ejects it on that failure, so the retry
    // (connect-failure is a default condition) has no host to go to.
    const m = await mesh(`${reviewsServiceEntry(port, ['127.0.0.9'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 1, interval: 1m, baseEjectionTime: 10m, maxEjectionPercent: 100 }
`);
    const res = await m.fetch(`http://reviews:${port}/`);
    expect(res.status).toBe(503);
    expect(res.headers.get(RESPONSE_FLAGS_HEADER)).toBe('UH');
    expect(await res.text()).toBe('no healthy upstream');
  });

  it('retries a gRPC UNAVAILABLE trailers-only answer (grpc-status 14 in the headers)', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']));
    answer((s) => s.pod === '127.0.0.2', 200, { 'content-type': 'application/grpc', 'grpc-status': '14' });
    const res = await m.fetch(`http://reviews:${port}/pkg.Svc/Get`, { method: 'POST', headers: { 'content-type': 'application/grpc' }, body: 'x' });
    expect(res.headers.get('x-pod')).toBe('127.0.0.3');
  });
});

describe('VirtualService retries', () => {
  it('attempts: 0 turns retries off: the 503 reaches the caller after one try', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 0 }'));
    answer(() => true, 503);
    expect((await get(m)).status).toBe(503);
    expect(log.seen).toHaveLength(1);
  });

  it('attempts: 4 with retryOn 5xx sends an always-500 request 5 times', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 4, retryOn: 5xx }'));
    answer(() => true, 500);
    expect((await get(m)).status).toBe(500);
    expect(log.seen).toHaveLength(5);
  });

  it('a retryOn without 503 no longer retries 503 (it replaces the default conditions and codes)', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 3, retryOn: connect-failure }'));
    answer(() => true, 503);
    expect((await get(m)).status).toBe(503);
    expect(log.seen).toHaveLength(1);
  });

  it('plain status codes in retryOn are retried: 502 is, 504 is not', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 2, retryOn: "502" }'));
    answer((s) => s.path === '/bad-gateway', 502);
    expect((await get(m, '/bad-gateway')).status).toBe(502);
    expect(log.seen).toHaveLength(3);
    log.clear();
    answer((s) => s.path === '/timeout', 504);
    expect((await get(m, '/timeout')).status).toBe(504);
    expect(log.seen).toHaveLength(1);
  });

  it('gateway-error retries 502, 503 and 504 but not 500', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']) + route('{ attempts: 2, retryOn: gateway-error }'));
    for (const status of [502, 503, 504]) {
      answer((s) => s.pod === '127.0.0.2', status);
      expect((await statuses(m, 4)).every((s) => s === 200)).toBe(true);
    }
    answer((s) => s.pod === '127.0.0.2', 500);
    expect(await statuses(m, 4)).toContain(500);
  });

  it('retriable-4xx retries 409 Conflict', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']) + route('{ attempts: 2, retryOn: retriable-4xx }'));
    answer((s) => s.pod === '127.0.0.2', 409);
    expect(await statuses(m, 6)).toEqual(Array(6).fill(200));
  });

  it('envoy-ratelimited retries a response carrying x-envoy-ratelimited', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']) + route('{ attempts: 2, retryOn: envoy-ratelimited }'));
    answer((s) => s.pod === '127.0.0.2', 429, { 'x-envoy-ratelimited': 'true' });
    expect(await statuses(m, 6)).toEqual(Array(6).fill(200));
  });

  it('retriable-headers retries responses with a header named in x-envoy-retriable-header-names', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']) + route('{ attempts: 2, retryOn: retriable-headers }'));
    answer((s) => s.pod === '127.0.0.2', 200, { 'x-try-again': 'yes' });
    const pods: (string | null)[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await m.fetch(`http://reviews:${port}/`, { headers: { 'x-envoy-retriable-header-names': 'X-Try-Again' } });
      pods.push(res.headers.get('x-pod'));
      await res.arrayBuffer();
    }
    expect(pods).toEqual(Array(4).fill('127.0.0.3'));
    // Without the request header nothing marks the answer retriable.
    expect(await statuses(m, 2)).toEqual([200, 200]);
    expect(log.count((s) => s.pod === '127.0.0.2')).toBeGreaterThanOrEqual(3);
  });

  it('retries go to a pod not tried before, unless retryIgnorePreviousHosts is false', async () => {
    // RANDOM balancing: a retry that may land on the failing pod again does so about half the time.
    const random = serviceEntry(['127.0.0.2', '127.0.0.3']).replace('simple: ROUND_ROBIN', 'simple: RANDOM');
    answer((s) => s.pod === '127.0.0.2', 500);
    const avoiding = await mesh(random + route('{ attempts: 1, retryOn: 5xx }'));
    expect(await statuses(avoiding, 30)).toEqual(Array(30).fill(200));
    const repeating = await mesh(random + route('{ attempts: 1, retryOn: 5xx, retryIgnorePreviousHosts: false }'));
    const seen = await statuses(repeating, 30);
    expect(seen.filter((s) => s === 500).length).toBeGreaterThan(0);
  });

  it('retryRemoteLocalities sends the retry to another locality; without it retries stay in the local one', async () => {
    // The caller is in region1/zone1: .2 there is priority 0; .3 in region2 is the failover.
    // outlierDetection turns locality failover on (5xx ejection itself is off here).
    const localities = (retries: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, locality: region1/zone1 }
  - { address: 127.0.0.3, locality: region2/zone2 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy: { outlierDetection: { consecutive5xxErrors: 0 } }
${route(retries)}`;
    answer((s) => s.pod === '127.0.0.2', 503);
    const local = await mesh(localities('{ attempts: 2, retryOn: "503" }'), { locality: 'region1/zone1' });
    expect(await statuses(local, 5)).toEqual(Array(5).fill(503));
    expect(log.count((s) => s.pod === '127.0.0.3')).toBe(0);
    const remote = await mesh(localities('{ attempts: 2, retryOn: "503", retryRemoteLocalities: true }'), { locality: 'region1/zone1' });
    expect(await statuses(remote, 5)).toEqual(Array(5).fill(200));
  });

  it('refuses an unknown retryOn condition, naming the resource, field and what is valid', async () => {
    const error = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 2, retryOn: "5xx,gateway-eror" }')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeshConfigError);
    const message = (error as Error).message;
    expect(message).toContain('VirtualService shop/reviews');
    expect(message).toContain('spec.http[0].retries.retryOn');
    expect(message).toContain(`"gateway-eror" is not a valid retryOn policy; did you mean 'gateway-error'?`);
  });
});

describe('request bodies and retries', () => {
  it('replays a streamed body in full on the retry', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']));
    answer((s) => s.pod === '127.0.0.2', 503);
    const payload = 'x'.repeat(100_000);
    for (let i = 0; i < 2; i++) {
      const res = await m.request(`http://reviews:${port}/upload`, { method: 'POST', body: Readable.from([payload.slice(0, 50_000), payload.slice(50_000)]) });
      expect(res.statusCode).toBe(200);
      await res.body.text();
    }
    const bodies = await Promise.all(log.seen.filter((s) => s.pod === '127.0.0.3').map((s) => s.body));
    expect(bodies).toEqual([payload, payload]);
  });

  it('does not retry a streamed body larger than the retry buffer: the 503 reaches the caller', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']), { retryBufferBytes: 1_000 });
    answer(() => true, 503);
    const res = await m.request(`http://reviews:${port}/upload`, { method: 'POST', body: Readable.from(['a'.repeat(800), 'b'.repeat(800)]) });
    expect(res.statusCode).toBe(503);
    await res.body.text();
    expect(log.seen).toHaveLength(1);
  });

  it('retries a string body given to mesh.request whatever its size', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']), { retryBufferBytes: 10 });
    answer((s) => s.pod === '127.0.0.2', 503);
    const res = await m.request(`http://reviews:${port}/upload`, { method: 'POST', body: 'a string body longer than ten bytes' });
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(await log.seen.find((s) => s.pod === '127.0.0.3')!.body).toBe('a string body longer than ten bytes');
  });
});

describe('timeouts with retries (timers fired by the test)', () => {
  /**
   * The pod that gets the first request (round robin starts anywhere) never answers; the test
   * holds its requests. The other pod serves.
   */
  function hang(): SeenRequest[] {
    const held: SeenRequest[] = [];
    let slow: string | undefined;
    log.take = (s) => {
      slow ??= s.pod;
      if (s.pod !== slow) return false;
      held.push(s);
      return true;
    };
    return held;
  }

  it('perTryTimeout abandons a silent pod and retries on the other one', async () => {
    const clock = new TestClock();
    const m = await mesh(serviceEntry(['127.0.0.2', '127.0.0.3']) + route('{ attempts: 2, perTryTimeout: 2s, retryOn: 5xx }'), { clock });
    const held = hang();
    const pending = get(m);
    await log.until(() => log.seen.length === 1);
    // The attempt's timer, then the back-off before the retry.
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(2000);
    expect((await clock.next(isRequestTimer)).delayMs).toBeLessThan(25);
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.pod).not.toBe(held[0]!.pod);
    // The abandoned attempt's connection was closed.
    await connectionClosed(held[0]!);
  });

  it('answers 504 when the per-try timeout passes on the last attempt', async () => {
    const clock = new TestClock();
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 1, perTryTimeout: 1s, retryOn: connect-failure }'), { clock });
    const held = hang();
    const pending = get(m);
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(1000);
    const r = await pending;
    expect(r.status).toBe(504);
    expect(r.body).toBe('upstream request timeout');
    expect(held).toHaveLength(1);
  });

  it('the route timeout covers every attempt: 504, and the attempt in flight is cancelled', async () => {
    const clock = new TestClock();
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 5, perTryTimeout: 1s, retryOn: 5xx }', '    timeout: 1500ms\n'), { clock });
    const held = hang();
    const pending = get(m);
    await log.until(() => log.seen.length === 1);
    // The first attempt's timeout, the back-off, then the route's 1.5 s pass during the second attempt.
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(1000);
    expect((await clock.next(isRequestTimer)).delayMs).toBeLessThan(25);
    await log.until(() => log.seen.length === 2);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(1500);
    const r = await pending;
    expect(r.status).toBe(504);
    expect(held).toHaveLength(2);
    await connectionClosed(held[1]!);
  });

  it('backs off before each retry as Envoy does: random within 25 ms, then 75 ms', async () => {
    const clock = new TestClock();
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 2, retryOn: 5xx }'), { clock });
    answer(() => true, 500);
    const pending = get(m);
    await log.until(() => log.seen.length === 1);
    await clock.until(isRequestTimer);
    const first = clock.waiting.filter(isRequestTimer);
    expect(first).toHaveLength(1);
    expect(first[0]!.delayMs).toBeLessThan(25);
    clock.runNext(isRequestTimer);
    await log.until(() => log.seen.length === 2);
    await clock.until(isRequestTimer);
    const second = clock.waiting.filter(isRequestTimer);
    expect(second).toHaveLength(1);
    expect(second[0]!.delayMs).toBeLessThan(75);
    clock.runNext(isRequestTimer);
    expect((await pending).status).toBe(500);
    expect(log.seen).toHaveLength(3);
  });

  it('a `backoff` sets the base interval', async () => {
    const clock = new TestClock();
    const m = await mesh(serviceEntry(['127.0.0.2']) + route('{ attempts: 1, retryOn: 5xx, backoff: 2s }'), { clock, random: () => 0.999 });
    answer(() => true, 500);
    const pending = get(m);
    await log.until(() => log.seen.length === 1);
    const task = await clock.next(isRequestTimer);
    expect(task.delayMs).toBeGreaterThan(1900);
    expect(task.delayMs).toBeLessThan(2000);
    expect((await pending).status).toBe(500);
  });
});

describe('hedging (our addition: sidecarless.io/hedge-after on the DestinationRule)', () => {
  const hedged = (extra = '') => `
${reviewsServiceEntry(port, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
  annotations: { sidecarless.io/hedge-after: 50ms${extra} }
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
`;

  it('sends a backup attempt to the other pod when the first is slow; the first answer wins, the slow one is cancelled', async () => {
    const clock = new TestClock();
    const m = await mesh(hedged(), { clock });
    const held: SeenRequest[] = [];
    let slow: string | undefined;
    log.take = (s) => {
      slow ??= s.pod;
      return s.pod === slow ? (held.push(s), true) : false;
    };
    const pending = get(m);
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(50);
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.pod).not.toBe(slow);
    await connectionClosed(held[0]!);
  });

  it('never hedges a POST', async () => {
    const clock = new TestClock();
    const m = await mesh(hedged(), { clock });
    const res = await m.fetch(`http://reviews:${port}/`, { method: 'POST', body: 'x' });
    await res.text();
    expect(clock.scheduled.filter(isRequestTimer)).toEqual([]);
  });

  it('refuses a hedge delay that is not a duration, naming the annotation', async () => {
    const error = await mesh(hedged().replace('50ms', 'soon')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeshConfigError);
    expect((error as Error).message).toContain('metadata.annotations.sidecarless.io/hedge-after');
    expect((error as Error).message).toContain('expected a duration of at least 1ms');
  });
});

describe('deadline propagation (our addition)', () => {
  it('caps a call by the deadline of the request being handled: 504 when it passes', async () => {
    const clock = new TestClock();
    const m = await mesh(serviceEntry(['127.0.0.2']), { clock });
    const held: SeenRequest[] = [];
    log.take = (s) => (held.push(s), true);
    const pending = runWithDeadline(5_000, () => get(m));
    await log.until(() => log.seen.length === 1);
    const timers = clock.waiting.filter(isRequestTimer);
    expect(timers).toHaveLength(1);
    expect(timers[0]!.delayMs).toBeLessThanOrEqual(5_000);
    clock.runNext(isRequestTimer);
    expect((await pending).status).toBe(504);
  });

  it('does not send at all once the deadline has passed', async () => {
    const m = await mesh(serviceEntry(['127.0.0.2']));
    const r = await runWithDeadline(0, () => get(m));
    expect(r.status).toBe(504);
    expect(r.body).toBe('deadline exceeded');
    expect(log.seen).toHaveLength(0);
  });

  it('an inner deadline cannot outlast the outer one', async () => {
    const clock = new TestClock();
    const m = await mesh(serviceEntry(['127.0.0.2']), { clock });
    log.take = () => true;
    const pending = runWithDeadline(1_000, () => runWithDeadline(60_000, () => get(m)));
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBeLessThanOrEqual(1_000);
    expect((await pending).status).toBe(504);
  });
});
