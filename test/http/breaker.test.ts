import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { BreakerEvent, BreakerOptions, Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';

let pods: Pods;
let log: RequestLog;
let failWith: number | undefined;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  log = new RequestLog(pods);
  log.take = (seen) => {
    if (failWith === undefined) return false;
    seen.res.writeHead(failWith).end('failing');
    return true;
  };
});
afterAll(() => pods.close());

let mesh: Mesh | undefined;
afterEach(async () => {
  failWith = undefined;
  log.clear();
  await mesh?.close();
  mesh = undefined;
});

const config = () => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2 }]
`;

/**
 * resetTimeout is opossum's own wall-clock timer: tests wait for its `half-open` event (never
 * measure it), and it is long enough that the fail-fast checks run before it passes.
 */
const tripAfterTwo: BreakerOptions = { errorThresholdPercentage: 50, volumeThreshold: 2, resetTimeout: 150 };

async function start(breakers: Record<string, BreakerOptions>): Promise<{ events: BreakerEvent[]; next: (state: string) => Promise<void> }> {
  mesh = await meshFromYaml(config(), { namespace: 'shop', random: seededRandom(5), dns: false, breakers });
  const events: BreakerEvent[] = [];
  mesh.on('breaker', (e) => events.push(e));
  const next = (state: string) =>
    new Promise<void>((resolve) => {
      const listener = (e: BreakerEvent): void => {
        if (e.state !== state) return;
        mesh!.off('breaker', listener);
        resolve();
      };
      mesh!.on('breaker', listener);
    });
  return { events, next };
}

const url = () => `http://ratings:${pods.port}/`;

async function status(): Promise<number> {
  const res = await mesh!.fetch(url());
  await res.arrayBuffer();
  return res.status;
}

describe('service circuit breaker (opossum)', () => {
  it('opens after failures, fails fast without the network, half-opens and closes on a good trial', async () => {
    const { events, next } = await start({ ratings: tripAfterTwo });
    failWith = 500;
    expect([await status(), await status()]).toEqual([500, 500]);
    expect(events).toEqual([{ host: 'ratings.shop.svc.cluster.local', state: 'open' }]);
    expect(mesh!.breaker('ratings')).toBe('open');

    const refused = await mesh!.fetch(url());
    expect(refused.status).toBe(503);
    expect(await refused.text()).toBe('circuit breaker open for ratings.shop.svc.cluster.local');
    expect(log.seen).toHaveLength(2);

    const halfOpen = next('half-open');
    await halfOpen;
    failWith = undefined;
    const closed = next('closed');
    expect(await status()).toBe(200);
    await closed;
    expect(events.map((e) => e.state)).toEqual(['open', 'half-open', 'closed']);
    expect(await status()).toBe(200);
  });

  it('opens again when the half-open trial fails', async () => {
    const { events, next } = await start({ ratings: tripAfterTwo });
    failWith = 503;
    await status();
    await status();
    await next('half-open');
    const reopened = next('open');
    expect(await status()).toBe(503);
    await reopened;
    expect(events.map((e) => e.state)).toEqual(['open', 'half-open', 'open']);
    // Three requests reached the pod, each sent three times (Istio's default policy retries a
    // 503 twice); the breaker counts requests, not attempts.
    expect(log.seen).toHaveLength(9);
  });

  it("answers with the fallback's response while open", async () => {
    await start({
      'ratings.shop': {
        ...tripAfterTwo,
        resetTimeout: 60_000,
        fallback: (request) => ({ status: 200, headers: { 'x-fallback': 'yes' }, body: `cached ${request.method} ${request.path}` }),
      },
    });
    failWith = 500;
    await status();
    await status();
    const res = await mesh!.fetch(`${url()}stars?id=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fallback')).toBe('yes');
    expect(await res.text()).toBe('cached GET /stars?id=1');
    expect(log.seen).toHaveLength(2);
  });

  it('counts only what isFailure calls a failure', async () => {
    const { events } = await start({ ratings: { ...tripAfterTwo, isFailure: (o) => o.status === 503 } });
    failWith = 500;
    for (let i = 0; i < 4; i++) expect(await status()).toBe(500);
    expect(events).toEqual([]);
  });

  it('is added, replaced and removed at run time with mesh.breaker()', async () => {
    await start({});
    expect(mesh!.breaker('ratings')).toBeUndefined();
    failWith = 500;
    await status();
    await status();
    expect(mesh!.breaker('ratings', { ...tripAfterTwo, resetTimeout: 60_000 })).toBe('closed');
    await status();
    await status();
    expect(mesh!.breaker('ratings')).toBe('open');
    expect(await status()).toBe(503);
    expect(log.seen).toHaveLength(4);
    mesh!.breaker('ratings', null);
    expect(await status()).toBe(500);
    expect(log.seen).toHaveLength(5);
  });
});
