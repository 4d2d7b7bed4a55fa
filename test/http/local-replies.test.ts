import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import { RateLimitedError, RESPONSE_FLAGS_HEADER, runWithDeadline } from '../../src/index.js';
import type { BreakerOptions, Mesh, MeshOptions } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';

/**
 * The rule of docs/errors.md: what Envoy answers locally, the mesh answers with Envoy's status and
 * body plus `x-sidecarless-response-flags` carrying Envoy's response flag; configured answers
 * (direct response, redirect) and upstream responses carry no flag. Each condition through
 * mesh.fetch and mesh.request.
 */
let pods: Pods;
let log: RequestLog;
/** The pod holds the requests it receives (no answer) while set. */
let hold = false;
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  log = new RequestLog(pods);
  log.take = (seen) => {
    if (hold) return true;
    if (seen.path === '/fail') {
      seen.res.writeHead(503).end('upstream says no');
      return true;
    }
    return false;
  };
});

afterEach(async () => {
  hold = false;
  for (const seen of log.seen) if (!seen.res.headersSent) seen.res.end('late');
  log.clear();
  await Promise.all(meshes.splice(0).map((m) => m.close()));
});

afterAll(async () => {
  await pods.close();
});

const H = RESPONSE_FLAGS_HEADER;

function service(): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2, labels: { version: v1 } }]
`;
}

function routes(http: string, trafficPolicy?: string, subsets = '[{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]'): string {
  return `${service()}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec: { host: reviews, ${trafficPolicy === undefined ? '' : `trafficPolicy: ${trafficPolicy}, `}subsets: ${subsets} }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
${http}`;
}

async function mesh(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  const m = await meshFromYaml(yaml, { namespace: 'shop', dns: false, random: seededRandom(1), ...options });
  meshes.push(m);
  return m;
}

interface Seen {
  readonly status: number;
  readonly body: string;
  readonly flags: string | null;
}

const url = (path = '/') => `http://reviews:${pods.port}${path}`;

async function viaFetch(m: Mesh, path = '/', init: Parameters<Mesh['fetch']>[1] = {}): Promise<Seen> {
  const res = await m.fetch(url(path), { redirect: 'manual', ...init });
  return { status: res.status, body: await res.text(), flags: res.headers.get(H) };
}

async function viaRequest(m: Mesh, path = '/', options: Parameters<Mesh['request']>[1] = {}): Promise<Seen> {
  const res = await m.request(url(path), options);
  const flags = res.headers[H];
  return { status: res.statusCode, body: await res.body.text(), flags: typeof flags === 'string' ? flags : null };
}

async function both(m: Mesh, path = '/', headers: Record<string, string> = {}): Promise<Seen[]> {
  return [await viaFetch(m, path, { headers }), await viaRequest(m, path, { headers })];
}

function twice(seen: Seen): Seen[] {
  return [seen, seen];
}

describe("answers the mesh makes itself carry Envoy's response flag", () => {
  it('NR: no http entry matches: 404 "route not found"', async () => {
    const m = await mesh(
      routes(`  - match: [{ headers: { x-user: { exact: jason } } }]
    route: [{ destination: { host: reviews } }]
`),
    );
    expect(await both(m)).toEqual(twice({ status: 404, body: 'route not found', flags: 'NR' }));
    expect(log.seen).toHaveLength(0);
  });

  it('NC: a route to a subset of a service the mesh has no cluster for (resolution NONE): 503 "no healthy upstream"', async () => {
    const m = await mesh(
      routes('  - route: [{ destination: { host: reviews, subset: v1 } }]\n')
        .replace('resolution: STATIC', 'resolution: NONE')
        .replace(/ {2}endpoints: .*\n/, ''),
    );
    expect(await both(m)).toEqual(twice({ status: 503, body: 'no healthy upstream', flags: 'NC' }));
    expect(log.seen).toHaveLength(0);
  });

  it('UH: no endpoint to pick: 503 "no healthy upstream" and why', async () => {
    const m = await mesh(
      routes(
        '  - match: [{ headers: { x-subset: { exact: v9 } } }]\n    route: [{ destination: { host: reviews, subset: v9 } }]\n  - route: [{ destination: { host: reviews, subset: v2 } }]\n',
      ),
    );
    const host = 'reviews.shop.svc.cluster.local';
    expect(await both(m)).toEqual(
      twice({ status: 503, body: `no healthy upstream: no endpoint of ${host} has the labels of subset "v2" (version=v2)`, flags: 'UH' }),
    );
    // A subset no DestinationRule defines is a cluster without endpoints here (Envoy: NC, no cluster).
    expect(await both(m, '/', { 'x-subset': 'v9' })).toEqual(
      twice({ status: 503, body: `no healthy upstream: subset "v9" of ${host} is not defined by any DestinationRule that applies`, flags: 'UH' }),
    );
    expect(log.seen).toHaveLength(0);
  });

  it('FI: a fault abort: the configured status and "fault filter abort"; DI,FI after a fault delay', async () => {
    const m = await mesh(
      routes(`  - match: [{ headers: { x-delay: { exact: 'yes' } } }]
    fault:
      delay: { fixedDelay: 5ms, percentage: { value: 100 } }
      abort: { httpStatus: 418, percentage: { value: 100 } }
    route: [{ destination: { host: reviews } }]
  - fault: { abort: { httpStatus: 503, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews } }]
`),
    );
    expect(await both(m)).toEqual(twice({ status: 503, body: 'fault filter abort', flags: 'FI' }));
    expect(await both(m, '/', { 'x-delay': 'yes' })).toEqual(twice({ status: 418, body: 'fault filter abort', flags: 'DI,FI' }));
    expect(log.seen).toHaveLength(0);
  });

  it('FI for a gRPC request: trailers-only 200 with grpc-status, flagged the same', async () => {
    const m = await mesh(
      routes(`  - fault: { abort: { grpcStatus: UNAVAILABLE, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews } }]
`),
    );
    const res = await m.request(url('/pkg.Svc/Call'), { method: 'POST', body: '', headers: { 'content-type': 'application/grpc' } });
    await res.body.dump();
    expect([res.statusCode, res.headers['grpc-status'], res.headers[H]]).toEqual([200, '14', 'FI']);
  });

  it('UT: the route timeout passes before a response: 504 "upstream request timeout"', async () => {
    const clock = new TestClock();
    const m = await mesh(routes('  - route: [{ destination: { host: reviews } }]\n    timeout: 200ms\n'), { clock });
    hold = true;
    const viaFetchSeen = viaFetch(m);
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(200);
    const viaRequestSeen = viaRequest(m);
    await log.until(() => log.seen.length === 2);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(200);
    expect([await viaFetchSeen, await viaRequestSeen]).toEqual(twice({ status: 504, body: 'upstream request timeout', flags: 'UT' }));
  });

  it('UT: every per-try timeout spent: 504 "upstream request timeout"', async () => {
    const clock = new TestClock();
    const m = await mesh(
      routes('  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 1, perTryTimeout: 200ms, retryOn: gateway-error }\n'),
      { clock },
    );
    hold = true;
    for (const call of [viaFetch, viaRequest]) {
      log.clear();
      const seen = call(m);
      await log.until(() => log.seen.length === 1);
      expect(clock.runNext(isRequestTimer)?.delayMs).toBe(200);
      // The retry goes out after its back-off; its own per-try timeout then passes too.
      expect((await clock.next(isRequestTimer)).delayMs).toBeLessThan(25);
      await log.until(() => log.seen.length === 2);
      expect(clock.runNext(isRequestTimer)?.delayMs).toBe(200);
      expect(await seen).toEqual({ status: 504, body: 'upstream request timeout', flags: 'UT' });
    }
  });

  it('UT: the deadline of the request being handled has passed: 504 "deadline exceeded"', async () => {
    const m = await mesh(routes('  - route: [{ destination: { host: reviews } }]\n'));
    expect(await runWithDeadline(0, () => both(m))).toEqual(twice({ status: 504, body: 'deadline exceeded', flags: 'UT' }));
    expect(log.seen).toHaveLength(0);
  });

  it("UO: a connectionPool limit overflows: 503 with x-envoy-overloaded and Envoy's overflow text", async () => {
    const m = await mesh(routes('  - route: [{ destination: { host: reviews } }]\n', '{ connectionPool: { http: { http2MaxRequests: 1 } } }'));
    hold = true;
    const inFlight = m.request(url());
    await log.until(() => log.seen.length === 1);
    const body = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';
    const fetched = await m.fetch(url());
    expect([fetched.status, await fetched.text(), fetched.headers.get(H), fetched.headers.get('x-envoy-overloaded')]).toEqual([503, body, 'UO', 'true']);
    const requested = await m.request(url());
    expect([requested.statusCode, await requested.body.text(), requested.headers[H], requested.headers['x-envoy-overloaded']]).toEqual([
      503,
      body,
      'UO',
      'true',
    ]);
    log.seen[0]!.res.end('late');
    expect((await inFlight).statusCode).toBe(200);
    expect(log.seen).toHaveLength(1);
  });

  it('RL: a client-side rate limit: fetch gets 429 "local_rate_limited", mesh.request rejects with RateLimitedError', async () => {
    const m = await mesh(`${routes('  - route: [{ destination: { host: reviews } }]\n')}---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  limits: [{ name: one, tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillInterval: 1h } }]
`);
    expect((await viaFetch(m)).status).toBe(200);
    expect(await viaFetch(m)).toEqual({ status: 429, body: 'local_rate_limited', flags: 'RL' });
    await expect(m.request(url())).rejects.toBeInstanceOf(RateLimitedError);
    expect(log.seen).toHaveLength(1);
  });

  it('UO: an open service breaker: 503 "circuit breaker open for <host>", and its fallback\'s answer flagged too', async () => {
    const trip: BreakerOptions = { errorThresholdPercentage: 50, volumeThreshold: 1, resetTimeout: 60_000 };
    const m = await mesh(routes('  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 0 }\n'), { breakers: { reviews: trip } });
    expect(await viaRequest(m, '/fail')).toEqual({ status: 503, body: 'upstream says no', flags: null });
    expect(m.breaker('reviews')).toBe('open');
    expect(await both(m)).toEqual(twice({ status: 503, body: 'circuit breaker open for reviews.shop.svc.cluster.local', flags: 'UO' }));
    m.breaker('reviews', { ...trip, fallback: () => ({ status: 200, body: 'cached' }) });
    expect(await viaRequest(m, '/fail')).toEqual({ status: 503, body: 'upstream says no', flags: null });
    expect(await both(m)).toEqual(twice({ status: 200, body: 'cached', flags: 'UO' }));
  });
});

describe('answers that carry no flag', () => {
  it('a directResponse and a redirect: configured answers, as Envoy flags them with none', async () => {
    const m = await mesh(
      routes(`  - match: [{ uri: { prefix: /old } }]
    redirect: { uri: /new }
  - directResponse: { status: 418, body: { string: teapot } }
`),
    );
    expect(await both(m)).toEqual(twice({ status: 418, body: 'teapot', flags: null }));
    const moved = await m.fetch(url('/old'), { redirect: 'manual' });
    expect([moved.status, moved.headers.get('location'), moved.headers.get(H)]).toEqual([301, `http://reviews:${pods.port}/new`, null]);
    const movedToo = await m.request(url('/old'));
    await movedToo.body.dump();
    expect([movedToo.statusCode, movedToo.headers[H]]).toEqual([301, undefined]);
  });

  it("an upstream's own answers, a 503 after the retries were spent included", async () => {
    const m = await mesh(routes('  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 1, retryOn: 5xx }\n'));
    expect((await both(m)).map((s) => [s.status, s.flags])).toEqual([
      [200, null],
      [200, null],
    ]);
    expect(await both(m, '/fail')).toEqual(twice({ status: 503, body: 'upstream says no', flags: null }));
  });
});
