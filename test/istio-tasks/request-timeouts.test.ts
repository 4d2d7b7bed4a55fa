// Istio task "Request Timeouts": https://istio.io/latest/docs/tasks/traffic-management/request-timeouts/
// YAML verbatim from the page: ratings delayed 2s, reviews routed to v2 with `timeout: 0.5s`. The
// reviews pod stands in for reviews v2 calling the delayed ratings: it does not answer in time.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { TestClock } from '../helpers/test-clock.js';
import { BOOKINFO_PODS, DESTINATION_RULE_ALL, RATINGS_V1, REVIEWS_V2, bookinfoServices, call } from './bookinfo.js';

const RATINGS_DELAY_2S = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - fault:
      delay:
        percentage:
          value: 100
        fixedDelay: 2s
    route:
    - destination:
        host: ratings
        subset: v1
`;

const REVIEWS_TIMEOUT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
  - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v2
    timeout: 0.5s
`;

let pods: Pods;
let log: RequestLog;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start(BOOKINFO_PODS);
  log = new RequestLog(pods);
});
afterEach(async () => {
  log.take = undefined;
  for (const seen of log.seen) if (!seen.res.headersSent) seen.res.end();
  log.clear();
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const config = () => bookinfoServices(pods.port) + DESTINATION_RULE_ALL + '---\n' + RATINGS_DELAY_2S + '---\n' + REVIEWS_TIMEOUT;

describe('Istio task: Request Timeouts', () => {
  it('ratings answers normally after the injected 2s delay (no timeout on ratings by default)', async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(config(), { namespace: 'default', clock });
    const reply = call(mesh, `http://ratings:${pods.port}/ratings/0`);
    await clock.until((t) => t.delayMs === 2_000);
    // No other request timer: HTTP requests have no timeout unless a route sets one.
    expect(clock.waiting.filter((t) => t.kind === 'request').map((t) => t.delayMs)).toEqual([2_000]);
    clock.advance(2_000);
    const res = await reply;
    expect(res.status).toBe(200);
    expect(res.reply?.pod).toBe(RATINGS_V1);
  });

  it('reviews v2 that takes longer than 0.5s: the caller gets 504 "upstream request timeout"', async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(config(), { namespace: 'default', clock });
    log.take = (seen) => seen.pod === REVIEWS_V2; // reviews v2 waits on the delayed ratings
    const reply = call(mesh, `http://reviews:${pods.port}/reviews/0`);
    await log.until(() => log.count((s) => s.pod === REVIEWS_V2) === 1);
    expect(clock.runNext((t) => t.kind === 'request')?.delayMs).toBe(500);
    const res = await reply;
    expect(res.status).toBe(504);
    expect(res.text).toBe('upstream request timeout');
    // No retry of a timed-out request by default: reviews v2 was called once.
    expect(log.count((s) => s.pod === REVIEWS_V2)).toBe(1);
  });

  it('a route timeout does not cut a reply that comes in time', async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(config(), { namespace: 'default', clock });
    const res = await call(mesh, `http://reviews:${pods.port}/reviews/0`);
    expect(clock.scheduled.filter((t) => t.kind === 'request').map((t) => [t.delayMs, t.state])).toEqual([[500, 'cancelled']]);
    expect(res.status).toBe(200);
    expect(res.reply?.pod).toBe(REVIEWS_V2);
  });

  // The page: "they can also be overridden on a per-request basis if the application adds an
  // x-envoy-upstream-rq-timeout-ms header on outbound requests".
  it('x-envoy-upstream-rq-timeout-ms on the request overrides the route timeout', async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(config(), { namespace: 'default', clock });
    log.take = (seen) => seen.pod === REVIEWS_V2;
    const reply = call(mesh, `http://reviews:${pods.port}/reviews/0`, { 'x-envoy-upstream-rq-timeout-ms': '250' });
    await log.until(() => log.count((s) => s.pod === REVIEWS_V2) === 1);
    // Envoy consumes the header: the upstream does not see it.
    expect(log.seen[0]!.headers['x-envoy-upstream-rq-timeout-ms']).toBeUndefined();
    expect(clock.runNext((t) => t.kind === 'request')?.delayMs).toBe(250);
    const res = await reply;
    expect(res.status).toBe(504);
    expect(res.text).toBe('upstream request timeout');
  });

  it('through mesh.fetch too, and 0 in the header means no timeout at all', async () => {
    const clock = new TestClock();
    mesh = await meshFromYaml(config(), { namespace: 'default', clock });
    log.take = (seen) => seen.pod === REVIEWS_V2;
    const timedOut = mesh.fetch(`http://reviews:${pods.port}/a`, { headers: { 'X-Envoy-Upstream-Rq-Timeout-Ms': '250' } });
    await log.until(() => log.count((s) => s.pod === REVIEWS_V2) === 1);
    expect(log.seen[0]!.headers['x-envoy-upstream-rq-timeout-ms']).toBeUndefined();
    expect(clock.runNext((t) => t.kind === 'request')?.delayMs).toBe(250);
    expect((await timedOut).status).toBe(504);

    // 0: the route's 0.5s does not apply either; the reply comes whenever reviews answers.
    const noTimeout = new TestClock();
    await mesh.close();
    mesh = await meshFromYaml(config(), { namespace: 'default', clock: noTimeout });
    const slow = mesh.fetch(`http://reviews:${pods.port}/b`, { headers: { 'x-envoy-upstream-rq-timeout-ms': '0' } });
    await log.until(() => log.count((s) => s.path === '/b') === 1);
    expect(noTimeout.scheduled.filter((t) => t.kind === 'request')).toEqual([]);
    log.seen.find((s) => s.path === '/b')!.res.end('late');
    expect((await slow).status).toBe(200);
  });
});
