import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { MeshClosedError } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import type { SeenRequest } from '../helpers/request-log.js';
import { RequestLog } from '../helpers/request-log.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';

/**
 * mesh.close(): new requests reject with MeshClosedError at once; retries, hedges, back-offs and
 * fault delays stop; requests in flight get the drain period (`drainTimeoutMs`, default 5 s, as
 * Istio's terminationDrainDuration) and are then aborted with MeshClosedError; close() resolves
 * once they are done or the period ends. The drain timer is the mesh clock's, fired by the test.
 */
let pods: Pods;
let log: RequestLog;
const meshes: Mesh[] = [];
const releases: (() => void)[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  log = new RequestLog(pods);
});
afterEach(async () => {
  for (const release of releases.splice(0)) release();
  log.take = undefined;
  log.clear();
  await Promise.all(meshes.splice(0).map((m) => m.close()));
});
afterAll(() => pods.close());

function config(extra = '', destinationRule = ''): string {
  return `
${reviewsServiceEntry(pods.port, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
${destinationRule}spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews } }]
${extra}`;
}

async function mesh(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<{ m: Mesh; clock: TestClock }> {
  const clock = new TestClock();
  const m = await meshFromYaml(yaml, { namespace: 'shop', random: seededRandom(9), clock, ...options });
  meshes.push(m);
  return { m, clock };
}

/** The pods keep every request unanswered; the test answers them (`answer`) or not at all. */
function holdAll(): SeenRequest[] {
  const held: SeenRequest[] = [];
  log.take = (s) => {
    held.push(s);
    releases.push(() => s.res.destroy());
    return true;
  };
  return held;
}

function answer(seen: SeenRequest, status: number, body = `answered ${status}`): void {
  seen.res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
}

/** Settles to the error a promise rejects with, or to `value` when it resolves. */
function outcome<T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return promise.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
}

/** A flag that turns true when `promise` settles, to see whether close() has resolved yet. */
function track(promise: Promise<unknown>): { settled: boolean } {
  const state = { settled: false };
  void promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

/** Resolves when the connection that carried `seen` is closed. */
function connectionClosed(seen: SeenRequest): Promise<void> {
  const socket = seen.req.socket;
  return socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.once('close', () => resolve()));
}

const url = (path: string) => `http://reviews:${pods.port}${path}`;

describe('after close', () => {
  it('a new request rejects with MeshClosedError (ERR_MESH_CLOSED); through fetch, a TypeError with it as cause', async () => {
    const { m } = await mesh(config());
    await m.close();
    const viaRequest = await outcome(m.request(url('/late')));
    expect(viaRequest.error).toBeInstanceOf(MeshClosedError);
    expect((viaRequest.error as MeshClosedError).code).toBe('ERR_MESH_CLOSED');
    const viaFetch = await outcome(m.fetch(url('/late')));
    expect(viaFetch.error).toBeInstanceOf(TypeError);
    expect((viaFetch.error as TypeError).cause).toBeInstanceOf(MeshClosedError);
    expect(log.seen).toEqual([]);
  });

  it('close() is idempotent: a second call resolves too', async () => {
    const { m } = await mesh(config());
    await Promise.all([m.close(), m.close()]);
    await m.close();
  });
});

describe('requests in flight when close is called', () => {
  it('one answered within the drain period completes normally, and close() resolves after it', async () => {
    const { m, clock } = await mesh(config());
    const held = holdAll();
    const pending = outcome(m.request(url('/slow')));
    await log.until(() => log.seen.length === 1);
    const closing = m.close();
    const closed = track(closing);
    await expect(
      m.request(url('/new')).then(
        () => 'sent',
        (e: unknown) => e,
      ),
    ).resolves.toBeInstanceOf(MeshClosedError);
    // The drain timer waits; close has not resolved while the request is in flight.
    await clock.until((t) => t.delayMs === 5000);
    expect(closed.settled).toBe(false);
    answer(held[0]!, 200);
    const { value } = await pending;
    expect(value?.statusCode).toBe(200);
    expect(await value!.body.text()).toBe('answered 200');
    await closing;
    // The drain timer was cancelled: nothing of the mesh is left to fire.
    expect(clock.waiting).toEqual([]);
  });

  it('a pod that never answers: the request is aborted with MeshClosedError when the drain period (5 s by default) ends, and close() resolves', async () => {
    const { m, clock } = await mesh(config());
    const held = holdAll();
    const pending = outcome(m.request(url('/silent')));
    const viaFetch = outcome(m.fetch(url('/silent-fetch')));
    await log.until(() => log.seen.length === 2);
    const closing = m.close();
    await clock.until((t) => t.delayMs === 5000);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(5000);
    const { error } = await pending;
    expect(error).toBeInstanceOf(MeshClosedError);
    expect((error as Error).message).toContain('drain');
    const fetched = await viaFetch;
    expect(fetched.error).toBeInstanceOf(TypeError);
    expect((fetched.error as TypeError).cause).toBeInstanceOf(MeshClosedError);
    await closing;
    // The pods saw the connections go.
    await Promise.all(held.map((seen) => connectionClosed(seen)));
  });

  it('drainTimeoutMs sets the drain period', async () => {
    const { m, clock } = await mesh(config(), { drainTimeoutMs: 250 });
    holdAll();
    const pending = outcome(m.request(url('/silent')));
    await log.until(() => log.seen.length === 1);
    const closing = m.close();
    await clock.until((t) => t.delayMs === 250);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(250);
    expect((await pending).error).toBeInstanceOf(MeshClosedError);
    await closing;
  });

  it('a response still streaming when the drain period ends: its body fails with MeshClosedError', async () => {
    const { m, clock } = await mesh(config());
    const held = holdAll();
    const pending = m.request(url('/stream'));
    await log.until(() => log.seen.length === 1);
    held[0]!.res.writeHead(200, { 'content-type': 'text/plain' });
    held[0]!.res.write('the first part of a long answer;');
    const res = await pending;
    const body = outcome(res.body.text());
    const closing = m.close();
    await clock.until((t) => t.delayMs === 5000);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(5000);
    expect((await body).error).toBeInstanceOf(MeshClosedError);
    await closing;
  });

  it('destroy() does not drain: requests in flight fail with MeshClosedError at once', async () => {
    const { m } = await mesh(config());
    holdAll();
    const pending = outcome(m.request(url('/silent')));
    await log.until(() => log.seen.length === 1);
    await m.dispatcher.destroy();
    expect((await pending).error).toBeInstanceOf(MeshClosedError);
  });
});

describe('nothing new starts after close', () => {
  it('a request waiting out a retry back-off fails at once with MeshClosedError; the retry never goes out', async () => {
    const { m, clock } = await mesh(config("    retries: { attempts: 3, retryOn: '5xx', backoff: 10s }\n"));
    const held = holdAll();
    const pending = outcome(m.request(url('/retried')));
    await log.until(() => log.seen.length === 1);
    answer(held[0]!, 503);
    await clock.until((t) => isRequestTimer(t) && t.delayMs < 10_000);
    const closing = m.close();
    const { error } = await pending;
    expect(error).toBeInstanceOf(MeshClosedError);
    await closing;
    // The back-off was cancelled; nothing of the mesh is left to fire.
    expect(clock.waiting).toEqual([]);
    expect(held).toHaveLength(1);
  });

  it('a retriable answer that comes during the drain is not retried: the caller gets it as it is', async () => {
    const { m, clock } = await mesh(config("    retries: { attempts: 3, retryOn: '5xx' }\n"));
    const held = holdAll();
    const pending = outcome(m.request(url('/answered-during-drain')));
    await log.until(() => log.seen.length === 1);
    const closing = m.close();
    answer(held[0]!, 503, 'still failing');
    const { value } = await pending;
    expect(value?.statusCode).toBe(503);
    expect(await value!.body.text()).toBe('still failing');
    await closing;
    expect(clock.waiting).toEqual([]);
    expect(held).toHaveLength(1);
  });

  it('a hedge armed before close never goes out', async () => {
    const { m, clock } = await mesh(config('', '  annotations: { sidecarless.io/hedge-after: 50ms }\n'));
    const held = holdAll();
    const pending = outcome(m.request(url('/hedged')));
    await log.until(() => log.seen.length === 1);
    await clock.until((t) => t.delayMs === 50);
    const closing = m.close();
    expect(clock.scheduled.filter((t) => t.delayMs === 50).map((t) => t.state)).toEqual(['cancelled']);
    answer(held[0]!, 200);
    expect((await pending).value?.statusCode).toBe(200);
    await closing;
    expect(held).toHaveLength(1);
  });

  it('a request held by a fault delay fails at once with MeshClosedError and is never sent', async () => {
    const { m, clock } = await mesh(config().replace('  - route:', '  - fault: { delay: { fixedDelay: 30s, percentage: { value: 100 } } }\n    route:'));
    const pending = outcome(m.request(url('/delayed')));
    await clock.until((t) => t.delayMs === 30_000);
    const closing = m.close();
    expect((await pending).error).toBeInstanceOf(MeshClosedError);
    await closing;
    expect(clock.waiting).toEqual([]);
    expect(log.seen).toEqual([]);
  });
});

describe('close is bounded', () => {
  it('a mirror copy stuck on a silent pod does not hold close()', async () => {
    const yaml = `${config('    mirror: { host: mirror }\n')}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: mirror, namespace: shop }
spec:
  hosts: [mirror.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.3 }]
`;
    const { m } = await mesh(yaml);
    // The mirror's pod (.3) never answers; the primary (.2) does.
    log.take = (s) => {
      if (s.host.startsWith('reviews-shadow')) {
        releases.push(() => s.res.destroy());
        return true;
      }
      return false;
    };
    for (let i = 0; i < 4; i++) {
      const res = await m.request(url(`/mirrored/${i}`));
      await res.body.text();
    }
    await log.until(() => log.count((s) => s.host.startsWith('reviews-shadow')) >= 1);
    await m.close();
  });
});
