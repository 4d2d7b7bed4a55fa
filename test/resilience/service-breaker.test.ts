import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { BreakerEvent, BreakerOptions, BreakerState, Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { TestClock } from '../helpers/test-clock.js';

// The breaker's edges through real requests: which requests opossum's rolling window counts, when
// it opens, the half-open trial, and outcomes that arrive after the state changed under them.

let pods: Pods;
let log: RequestLog;
/** Answer every request with this status (undefined: the pod's normal 200). */
let failWith: number | undefined;
/** Requests held unanswered (while `hold` is on), for the test to answer later. */
let held: ServerResponse[] = [];
let hold = false;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  log = new RequestLog(pods);
  log.take = (seen) => {
    if (hold) {
      held.push(seen.res);
      return true;
    }
    if (failWith === undefined) return false;
    seen.res.writeHead(failWith).end('failing');
    return true;
  };
});
afterAll(() => pods.close());

let mesh: Mesh | undefined;
afterEach(async () => {
  failWith = undefined;
  hold = false;
  for (const res of held) res.writeHead(200).end();
  held = [];
  log.clear();
  await mesh?.close();
  mesh = undefined;
});

const HOST = 'ratings.shop.svc.cluster.local';
const config = () => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2 }]
`;

async function start(options: BreakerOptions, clock?: TestClock): Promise<{ states: BreakerState[]; next: (state: BreakerState) => Promise<void> }> {
  mesh = await meshFromYaml(config(), { namespace: 'shop', random: seededRandom(7), dns: false, breakers: { ratings: options }, ...(clock ? { clock } : {}) });
  const states: BreakerState[] = [];
  mesh.on('breaker', (e: BreakerEvent) => states.push(e.state));
  const next = (state: BreakerState) =>
    new Promise<void>((resolve) => {
      const listener = (e: BreakerEvent): void => {
        if (e.state !== state) return;
        mesh!.off('breaker', listener);
        resolve();
      };
      mesh!.on('breaker', listener);
    });
  return { states, next };
}

const url = () => `http://ratings:${pods.port}/`;

async function send(): Promise<{ status: number; body: string }> {
  const res = await mesh!.fetch(url());
  return { status: res.status, body: await res.text() };
}

async function status(): Promise<number> {
  return (await send()).status;
}

const refused = { status: 503, body: `circuit breaker open for ${HOST}` };

describe('service breaker: the rolling window (opossum semantics)', () => {
  it('counts every admitted request, and opens only when failures exceed the threshold share', async () => {
    const { states } = await start({ errorThresholdPercentage: 50, volumeThreshold: 4, resetTimeout: 60_000 });
    expect(await status()).toBe(200);
    expect(await status()).toBe(200);
    failWith = 500;
    expect(await status()).toBe(500); // 1 of 3 requests failed, under volumeThreshold
    expect(await status()).toBe(500); // 2 of 4 = 50 %: not above the threshold
    expect(states).toEqual([]);
    expect(mesh!.breaker('ratings')).toBe('closed');
    expect(await status()).toBe(500); // 3 of 5 = 60 %
    expect(states).toEqual(['open']);
    expect(await send()).toEqual(refused);
    expect(log.seen).toHaveLength(5);
  });

  it('does not open before volumeThreshold requests, however many fail', async () => {
    const { states } = await start({ errorThresholdPercentage: 10, volumeThreshold: 3, resetTimeout: 60_000 });
    failWith = 500;
    expect([await status(), await status()]).toEqual([500, 500]);
    expect(states).toEqual([]);
    expect(await status()).toBe(500);
    expect(states).toEqual(['open']);
    expect(await send()).toEqual(refused);
    expect(log.seen).toHaveLength(3);
  });

  // The window (400 ms in 4 buckets) is rotated on the mesh clock, every 100 ms.
  const windowed: BreakerOptions = { errorThresholdPercentage: 50, volumeThreshold: 2, resetTimeout: 60_000, rollingCountTimeout: 400, rollingCountBuckets: 4 };

  it('counts requests in every bucket of the window', async () => {
    const clock = new TestClock();
    const { states } = await start(windowed, clock);
    failWith = 500;
    expect(await status()).toBe(500);
    clock.advance(300); // three rotations: that failure is in the oldest bucket, still in the window
    expect(await status()).toBe(500); // 2 of 2 in the window
    expect(states).toEqual(['open']);
    expect(await send()).toEqual(refused);
  });

  it('forgets requests older than the window, and keeps counting after it rolls', async () => {
    // A 400 ms window of 4 buckets, rotated on the mesh clock every 100 ms.
    const clock = new TestClock();
    const { states } = await start(windowed, clock);
    failWith = 500;
    expect(await status()).toBe(500);
    clock.advance(400);
    expect(await status()).toBe(500); // the first failure has left the window: 1 request, under volumeThreshold
    expect(states).toEqual([]);
    expect(await status()).toBe(500); // 2 of 2 in the rolled window
    expect(states).toEqual(['open']);
    expect(await send()).toEqual(refused);
  });
});

describe('service breaker: half-open', () => {
  const tripAfterTwo: BreakerOptions = { errorThresholdPercentage: 50, volumeThreshold: 2, resetTimeout: 150 };

  it('lets a single trial through; others are refused until it ends', async () => {
    const { states, next } = await start(tripAfterTwo);
    failWith = 500;
    await status();
    await status();
    await next('half-open');
    failWith = undefined;
    hold = true;
    const trial = send();
    await log.until(() => log.seen.length === 3);
    expect(await send()).toEqual(refused);
    expect(await send()).toEqual(refused);
    expect(log.seen).toHaveLength(3);
    const closed = next('closed');
    hold = false;
    held.shift()!.writeHead(200).end('trial');
    expect(await trial).toEqual({ status: 200, body: 'trial' });
    await closed;
    expect(states).toEqual(['open', 'half-open', 'closed']);
    expect(await status()).toBe(200);
  });

  it('closes on a success of a request sent while it was still closed', async () => {
    const { states, next } = await start({ ...tripAfterTwo, volumeThreshold: 3 });
    hold = true;
    const slow = send();
    await log.until(() => log.seen.length === 1);
    hold = false;
    failWith = 500;
    await status();
    await status(); // 2 failures of 3 requests (the slow one counts): open
    expect(states).toEqual(['open']);
    await next('half-open');
    const closed = next('closed');
    held.shift()!.writeHead(200).end('slow');
    expect(await slow).toEqual({ status: 200, body: 'slow' });
    await closed;
    expect(states).toEqual(['open', 'half-open', 'closed']);
    expect(log.seen).toHaveLength(3);
  });

  it('opens again on a failure of a request sent while it was still closed', async () => {
    const { states, next } = await start({ ...tripAfterTwo, volumeThreshold: 3 });
    hold = true;
    const slow = send();
    await log.until(() => log.seen.length === 1);
    hold = false;
    failWith = 500;
    await status();
    await status();
    // Refusals count as requests in opossum's window: 2 failures of 7 now, so the failure below
    // (3 of 8) reopens the breaker because it is half-open, not by the share.
    for (let i = 0; i < 4; i++) expect(await send()).toEqual(refused);
    await next('half-open');
    const reopened = next('open');
    held.shift()!.writeHead(500).end('slow');
    expect((await slow).status).toBe(500);
    await reopened;
    expect(states).toEqual(['open', 'half-open', 'open']);
    expect(await send()).toEqual(refused);
    expect(log.seen).toHaveLength(3);
  });
});
