import type { Dispatcher } from 'undici';
import { request as undiciRequest } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { EjectionEvent, Mesh } from '../../src/index.js';
import { InvalidRequestError } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';

/**
 * A caller's mistake (a header value undici refuses, a bad path) is not a pod's failure: it
 * fails at once with InvalidRequestError, nothing is sent, nothing is retried, and outlier
 * detection, the breaker and the connection-pool limits never hear of it. Three pods with
 * outlier detection that ejects after one failure (any pod blamed would leave at once).
 */
const PODS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
let pods: Pods;
let log: RequestLog;
let mesh: Mesh | undefined;

beforeAll(async () => {
  pods = await Pods.start(PODS);
  log = new RequestLog(pods);
});
afterEach(async () => {
  log.clear();
  await mesh?.close();
  mesh = undefined;
});
afterAll(() => pods.close());

const config = (retries: string) => `
${reviewsServiceEntry(pods.port, PODS)}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    connectionPool: { http: { http1MaxPendingRequests: 1, maxRetries: 1 } }
    outlierDetection: { consecutive5xxErrors: 1, consecutiveGatewayErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }], retries: ${retries} }]
`;

async function start(retries = "{ attempts: 3, retryOn: 'reset,5xx,connect-failure' }"): Promise<{ m: Mesh; ejections: EjectionEvent[] }> {
  // A breaker that opens on the first failure it counts: a caller's mistake must not count.
  const m = await meshFromYaml(config(retries), {
    namespace: 'shop',
    random: seededRandom(3),
    breakers: { reviews: { volumeThreshold: 1, errorThresholdPercentage: 1 } },
  });
  mesh = m;
  const ejections: EjectionEvent[] = [];
  m.on('ejection', (e) => ejections.push(e));
  return { m, ejections };
}

/** Every pod answers a normal request in turn: none was ejected. */
async function everyPodServes(m: Mesh): Promise<void> {
  const answered = new Set<string>();
  for (let i = 0; i < PODS.length * 2; i++) {
    const res = await m.request(`http://reviews:${pods.port}/ok`);
    expect(res.statusCode).toBe(200);
    answered.add(String(res.headers['x-pod']));
    await res.body.text();
  }
  expect([...answered].sort()).toEqual(PODS);
}

function expectInvalidRequest(error: unknown): InvalidRequestError {
  expect(error).toBeInstanceOf(InvalidRequestError);
  const e = error as InvalidRequestError;
  expect(e.code).toBe('ERR_MESH_INVALID_REQUEST');
  expect(e.cause).toBeInstanceOf(Error);
  return e;
}

describe('caller mistakes fail at once and are never blamed on a pod', () => {
  it('a header value carrying CRLF: 12 requests fail with ERR_MESH_INVALID_REQUEST, none is sent, no pod is ejected', async () => {
    const { m, ejections } = await start();
    for (let i = 0; i < 12; i++) {
      const error = await m.request(`http://reviews:${pods.port}/bad`, { headers: { 'x-forwarded-thing': 'a\r\nx-injected: 1' } }).then(
        () => undefined,
        (e: unknown) => e,
      );
      const e = expectInvalidRequest(error);
      expect(e.message).toMatch(/header/i);
    }
    expect(log.seen).toEqual([]);
    expect(ejections).toEqual([]);
    // Neither the pending-request limit (1) nor the retry limit (1) kept a count of them.
    expect(m.breaker('reviews')).toBe('closed');
    await everyPodServes(m);
    expect(ejections).toEqual([]);
    for (const cluster of m.inspect().clusters) for (const endpoint of cluster.endpoints) expect(endpoint.inFlight).toBe(0);
  });

  it('the same through undici.request with mesh.dispatcher and a path undici refuses', async () => {
    const { m, ejections } = await start("{ attempts: 2, retryOn: 'reset,5xx' }");
    const viaDispatcher = await undiciRequest(`http://reviews:${pods.port}/bad`, {
      dispatcher: m.dispatcher,
      headers: { 'x-bad': 'nul\0value' },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expectInvalidRequest(viaDispatcher);
    // A path with a character undici refuses to write, given straight to the dispatcher.
    const viaDispatch = await new Promise<Error>((resolve) => {
      const handler: Dispatcher.DispatchHandler = {
        onResponseStart: () => resolve(new Error('answered')),
        onResponseError: (_c, error) => resolve(error),
      };
      m.dispatcher.dispatch({ origin: `http://reviews:${pods.port}`, path: '/bad\u0001path', method: 'GET' }, handler);
    });
    expectInvalidRequest(viaDispatch);
    expect(log.seen).toEqual([]);
    expect(ejections).toEqual([]);
    await everyPodServes(m);
  });

  it('another undici major calling mesh.dispatcher with an option undici 8 refuses (maxRedirections), handler of the old shape', async () => {
    const { m, ejections } = await start();
    const error = await new Promise<Error>((resolve) => {
      // How undici 6 calls a dispatcher: onConnect/onHeaders/onData/onComplete/onError.
      const legacy = {
        onConnect: () => undefined,
        onHeaders: () => {
          resolve(new Error('answered'));
          return true;
        },
        onData: () => true,
        onComplete: () => undefined,
        onError: (e: Error) => resolve(e),
      };
      const opts = { origin: `http://reviews:${pods.port}`, path: '/old', method: 'GET', maxRedirections: 3 };
      m.dispatcher.dispatch(opts as Dispatcher.DispatchOptions, legacy as unknown as Dispatcher.DispatchHandler);
    });
    const e = expectInvalidRequest(error);
    expect(e.message).toContain('maxRedirections');
    expect(log.seen).toEqual([]);
    expect(ejections).toEqual([]);
    expect(m.breaker('reviews')).toBe('closed');
  });

  it("a FormData of Node's own fetch (another undici) as a mesh.request body", async () => {
    const { m, ejections } = await start();
    const form = new globalThis.FormData();
    form.set('field', 'value');
    const error = await m.request(`http://reviews:${pods.port}/form`, { method: 'POST', body: form as never }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expectInvalidRequest(error);
    expect(log.seen).toEqual([]);
    expect(ejections).toEqual([]);
  });

  it('a host no configuration covers (passed through) gets the same coded error', async () => {
    const { m } = await start();
    const error = await m.request(`http://127.0.0.2:${pods.port}/direct`, { headers: { 'x-bad': 'a\nb' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expectInvalidRequest(error);
    expect(log.seen).toEqual([]);
  });

  it('an origin that is not a URL fails with ERR_MESH_INVALID_REQUEST', async () => {
    const { m } = await start();
    const error = await new Promise<Error>((resolve) => {
      m.dispatcher.dispatch(
        { origin: 'not a url', path: '/', method: 'GET' },
        {
          onResponseStart: () => resolve(new Error('answered')),
          onResponseError: (_c, e) => resolve(e),
        },
      );
    });
    expectInvalidRequest(error);
  });
});
