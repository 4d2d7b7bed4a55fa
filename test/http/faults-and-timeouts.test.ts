import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { TestClock } from '../helpers/test-clock.js';

let pods: Pods;
let log: RequestLog;
let mesh: Mesh;
let port: number;
const clock = new TestClock();

const config = (p: number) => `
${reviewsServiceEntry(p, ['127.0.0.2'])}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: delayed
    match: [{ uri: { prefix: /delayed } }]
    fault: { delay: { fixedDelay: 5s, percentage: { value: 25 } } }
    route: [{ destination: { host: reviews } }]
  - name: delayed-legacy-percent
    match: [{ uri: { prefix: /legacy-delay } }]
    fault: { delay: { fixedDelay: 3s, percent: 60 } }
    route: [{ destination: { host: reviews } }]
  - name: delay-then-abort
    match: [{ uri: { prefix: /delay-then-abort } }]
    fault:
      delay: { fixedDelay: 7s, percentage: { value: 100 } }
      abort: { httpStatus: 418, percentage: { value: 100 } }
    route: [{ destination: { host: reviews } }]
  - name: unset-percentages
    match: [{ uri: { prefix: /unset } }]
    fault: { delay: { fixedDelay: 9s }, abort: { httpStatus: 500 } }
    route: [{ destination: { host: reviews } }]
  - name: grpc-abort
    match: [{ uri: { prefix: /grpc } }]
    fault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews } }]
  - name: stuck
    match: [{ uri: { prefix: /stuck } }]
    timeout: 2s
    headers: { response: { set: { x-route: stuck } } }
    route: [{ destination: { host: reviews } }]
  - name: quick
    route: [{ destination: { host: reviews } }]
    timeout: 4s
`;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  port = pods.port;
  log = new RequestLog(pods);
  // /stuck: the pod accepts the request and never answers.
  log.take = (seen) => seen.path.startsWith('/stuck');
  mesh = await meshFromYaml(config(port), { namespace: 'shop', random: seededRandom(5), clock });
});
afterAll(async () => {
  await pods.close();
  await mesh.close();
});

/** Timers of `delayMs` set so far. */
const count = (delayMs: number): number => clock.scheduled.filter((t) => t.delayMs === delayMs).length;

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await mesh.request(`http://reviews:${port}${path}`, { headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

describe('fault delay', () => {
  it('holds delayed requests until the delay fires, then they reach the pod', async () => {
    clock.auto = undefined;
    log.clear();
    const n = 40;
    const replies = Array.from({ length: n }, (_, i) => get(`/delayed/${i}`));
    const held = clock.waiting.filter((t) => t.delayMs === 5_000);
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThan(n);
    // Everything not delayed arrives; the delayed ones are still held.
    await log.until(() => log.count((s) => s.path.startsWith('/delayed/')) === n - held.length);
    expect(log.count((s) => s.path.startsWith('/delayed/'))).toBe(n - held.length);
    clock.advance(4_999);
    expect(held.every((t) => t.state === 'waiting')).toBe(true);
    clock.advance(1);
    const results = await Promise.all(replies);
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(log.count((s) => s.path.startsWith('/delayed/'))).toBe(n);
  });

  it('delays the configured share (25% within ±3 points over 2,000 requests), and reads the legacy integer percent', async () => {
    clock.auto = () => true;
    const before = count(5_000);
    for (let i = 0; i < 2_000; i++) expect((await get(`/delayed/${i}`)).status).toBe(200);
    expect(Math.abs((count(5_000) - before) / 20 - 25)).toBeLessThanOrEqual(3);

    for (let i = 0; i < 1_000; i++) expect((await get(`/legacy-delay/${i}`)).status).toBe(200);
    expect(Math.abs(count(3_000) / 10 - 60)).toBeLessThanOrEqual(4);
  }, 60_000);

  it('decides the abort after the delay, as Envoy does', async () => {
    clock.auto = undefined;
    log.clear();
    const reply = get('/delay-then-abort');
    expect(clock.runNext((t) => t.delayMs === 7_000)).toBeDefined();
    const res = await reply;
    expect(res.status).toBe(418);
    expect(res.text).toBe('fault filter abort');
    expect(log.count((s) => s.path === '/delay-then-abort')).toBe(0);
  });

  it('injects nothing when percentage is unset (Istio: 0%)', async () => {
    clock.auto = () => true;
    for (let i = 0; i < 50; i++) expect((await get(`/unset/${i}`)).status).toBe(200);
    expect(count(9_000)).toBe(0);
  });
});

describe('fault abort with a gRPC status', () => {
  it('answers a gRPC request trailers-only: HTTP 200 with grpc-status and grpc-message', async () => {
    const res = await get('/grpc/pkg.Service/Method', { 'content-type': 'application/grpc' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/grpc');
    expect(res.headers['grpc-status']).toBe('14');
    expect(res.headers['grpc-message']).toBe('fault filter abort');
    expect(res.text).toBe('');
  });

  it('answers a non-gRPC request with Envoy\'s 200 "fault filter abort"', async () => {
    const res = await get('/grpc/plain');
    expect(res.status).toBe(200);
    expect(res.headers['grpc-status']).toBeUndefined();
    expect(res.text).toBe('fault filter abort');
  });
});

describe('route timeout', () => {
  it('answers 504 "upstream request timeout" and closes the connection to the stuck pod', async () => {
    clock.auto = undefined;
    log.clear();
    const reply = get('/stuck/1');
    await log.until(() => log.count((s) => s.path === '/stuck/1') === 1);
    const [stuck] = log.seen.filter((s) => s.path === '/stuck/1');
    const socketClosed = new Promise<void>((resolve) => stuck!.req.socket.once('close', () => resolve()));
    clock.advance(1_999);
    expect(stuck!.res.headersSent).toBe(false);
    clock.advance(1);
    const res = await reply;
    expect(res.status).toBe(504);
    expect(res.text).toBe('upstream request timeout');
    // The route's response header rules apply to the 504 as well (Envoy's local reply).
    expect(res.headers['x-route']).toBe('stuck');
    await socketClosed;
    expect(stuck!.res.headersSent).toBe(false);
  });

  it('gives fetch callers the same 504', async () => {
    clock.auto = undefined;
    const reply = mesh.fetch(`http://reviews:${port}/stuck/fetch`);
    await log.until(() => log.count((s) => s.path === '/stuck/fetch') === 1);
    expect(clock.runNext((t) => t.delayMs === 2_000)).toBeDefined();
    const res = await reply;
    expect(res.status).toBe(504);
    expect(await res.text()).toBe('upstream request timeout');
    expect(res.headers.get('x-route')).toBe('stuck');
  });

  it('answers 504 when the timeout passes before the request is even written', async () => {
    clock.auto = undefined;
    const reply = get('/stuck/early');
    // Fired in the same tick as the dispatch: no connection yet.
    expect(clock.runNext((t) => t.delayMs === 2_000)).toBeDefined();
    const res = await reply;
    expect(res.status).toBe(504);
    expect(res.text).toBe('upstream request timeout');
  });

  it('cancels the timer when the response completes in time', async () => {
    clock.auto = undefined;
    const res = await get('/fast');
    expect(res.status).toBe(200);
    const timers = clock.scheduled.filter((t) => t.delayMs === 4_000);
    expect(timers.length).toBeGreaterThan(0);
    expect(timers.every((t) => t.state === 'cancelled')).toBe(true);
  });
});
