import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';

/**
 * Answers the mesh makes itself settle like network replies, on a later turn of the event loop:
 * a loop that awaits request after request to a route answered locally must let timers run.
 * Without it, such a loop never yields (every await resolves in the same microtask queue) and
 * grows until the process dies. The cap is a request count: a loop that reaches it starved the
 * timer.
 */
const CAP = 5_000;

let pods: Pods;
let mesh: Mesh;
let port: number;
/** Requests to /hold the pod keeps unanswered until the test ends. */
const held: ServerResponse[] = [];

const service = (name: string, labels = '') => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2${labels} }]
`;

const config = () => `
${service('reviews', ', labels: { version: v1 }')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: nobody, labels: { version: v9 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - match: [{ uri: { prefix: /abort } }]
    fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews } }]
  - match: [{ uri: { prefix: /direct } }]
    directResponse: { status: 200, body: { string: "answered by the mesh" } }
  - match: [{ uri: { prefix: /redirect } }]
    redirect: { uri: /elsewhere }
  - match: [{ uri: { prefix: /undefined-subset } }]
    route: [{ destination: { host: reviews, subset: ghost } }]
  - match: [{ uri: { prefix: /no-endpoints } }]
    route: [{ destination: { host: reviews, subset: nobody } }]
  - match: [{ uri: { prefix: /served } }]
    route: [{ destination: { host: reviews } }]
---
${service('strict')}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: strict, namespace: shop }
spec:
  hosts: [strict]
  http: [{ match: [{ uri: { exact: /only } }], route: [{ destination: { host: strict } }] }]
---
${service('tight')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: tight, namespace: shop }
spec:
  host: tight
  trafficPolicy: { connectionPool: { http: { http2MaxRequests: 1 } } }
---
${service('burst')}---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: burst, namespace: shop }
spec:
  host: burst
  limits:
  - name: all
    tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillInterval: 1h }
---
${service('fragile')}`;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  port = pods.port;
  pods.behave = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/hold') return false;
    held.push(res);
    return true;
  };
  mesh = await meshFromYaml(config(), {
    namespace: 'shop',
    random: seededRandom(5),
    breakers: { fragile: { isFailure: () => true, volumeThreshold: 1, errorThresholdPercentage: 1, resetTimeout: 3_600_000 } },
  });
});
afterAll(async () => {
  for (const res of held) res.end();
  await mesh.close();
  await pods.close();
});

/**
 * Sends `send` again and again, each awaited, until a `setTimeout(0)` set before the loop has
 * run. Returns what the last call gave and how many calls it took.
 */
async function loopUntilTimer(send: () => Promise<unknown>): Promise<{ calls: number; timerRan: boolean; last: unknown }> {
  let timerRan = false;
  const timer = setTimeout(() => {
    timerRan = true;
  }, 0);
  let calls = 0;
  let last: unknown;
  while (!timerRan && calls < CAP) {
    last = await send();
    calls++;
  }
  clearTimeout(timer);
  return { calls, timerRan, last };
}

/** mesh.request: the status and body, or the error it rejected with. */
async function request(path: string, host = 'reviews'): Promise<{ status: number; body: string } | Error> {
  try {
    const res = await mesh.request(`http://${host}:${port}${path}`);
    return { status: res.statusCode, body: await res.body.text() };
  } catch (error) {
    return error as Error;
  }
}

describe('local replies settle on a later turn of the event loop', () => {
  const cases: [string, string, string, unknown][] = [
    ['fault abort', 'reviews', '/abort', { status: 503, body: 'fault filter abort' }],
    ['direct response', 'reviews', '/direct', { status: 200, body: 'answered by the mesh' }],
    ['redirect', 'reviews', '/redirect', { status: 301, body: '' }],
    ['route to a subset no DestinationRule defines', 'reviews', '/undefined-subset', { status: 503, body: expect.stringMatching(/^no healthy upstream/) }],
    ['no endpoint to pick', 'reviews', '/no-endpoints', { status: 503, body: expect.stringMatching(/^no healthy upstream/) }],
    ['route not found', 'strict', '/nowhere', { status: 404, body: 'route not found' }],
  ];
  for (const [name, host, path, expected] of cases) {
    it(`${name}: a timer runs within a loop of awaited requests`, async () => {
      const { timerRan, last } = await loopUntilTimer(() => request(path, host));
      expect(last).toEqual(expected);
      expect(timerRan).toBe(true);
    });
  }

  it('rate limited (mesh.request rejects with RateLimitedError)', async () => {
    await request('/first', 'burst');
    const { timerRan, last } = await loopUntilTimer(() => request('/again', 'burst'));
    expect((last as { code?: string }).code).toBe('ERR_MESH_RATE_LIMITED');
    expect(timerRan).toBe(true);
  });

  it('connection-pool overflow while a request holds the only slot', async () => {
    const holding = mesh.request(`http://tight:${port}/hold`);
    await new Promise<void>((resolve) => {
      const check = (): void => (held.length > 0 ? resolve() : void setImmediate(check));
      check();
    });
    const { timerRan, last } = await loopUntilTimer(() => request('/more', 'tight'));
    expect(last).toMatchObject({ status: 503 });
    expect(timerRan).toBe(true);
    held.shift()!.end();
    await (await holding).body.text();
  });

  it('service breaker open', async () => {
    await request('/trips-the-breaker', 'fragile');
    expect(mesh.breaker('fragile')).toBe('open');
    const { timerRan, last } = await loopUntilTimer(() => request('/refused', 'fragile'));
    expect(last).toMatchObject({ status: 503 });
    expect(timerRan).toBe(true);
  });

  it('an answer through the dispatcher comes after dispatch has returned', async () => {
    const events: string[] = [];
    await new Promise<void>((resolve) => {
      mesh.dispatcher.dispatch(
        { origin: `http://reviews:${port}`, path: '/abort', method: 'GET' },
        {
          onRequestStart: () => events.push('start'),
          onResponseStart: (_c, status) => events.push(String(status)),
          onResponseEnd: () => resolve(),
          onResponseError: () => resolve(),
        },
      );
      events.push('dispatch returned');
    });
    expect(events).toEqual(['dispatch returned', 'start', '503']);
  });
});

describe('a local reply status that is not a final response status', () => {
  it('a breaker fallback answering 150 gets a 500 instead of hanging the caller', async () => {
    mesh.breaker('fragile', {
      isFailure: () => true,
      volumeThreshold: 1,
      errorThresholdPercentage: 1,
      resetTimeout: 3_600_000,
      fallback: () => ({ status: 150, body: 'informational' }),
    });
    await request('/trips-the-breaker', 'fragile');
    expect(mesh.breaker('fragile')).toBe('open');
    const viaRequest = await request('/fallback', 'fragile');
    expect(viaRequest).toMatchObject({ status: 500 });
    expect((viaRequest as { body: string }).body).toContain('150');
    const viaFetch = await mesh.fetch(`http://fragile:${port}/fallback`);
    expect(viaFetch.status).toBe(500);
    await viaFetch.text();
  });
});
