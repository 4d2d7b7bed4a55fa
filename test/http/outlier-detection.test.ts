import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { EjectionEvent, Mesh } from '../../src/index.js';
import { TestClock } from '../helpers/test-clock.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';

/** Three pods; `failing` maps a pod to the status it answers with instead of its JSON. */
let pods: Pods;
const failing = new Map<string, number>();
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  pods.behave = (req, res, pod) => {
    const status = failing.get(pod);
    if (status === undefined) return false;
    req.resume();
    res.writeHead(status, { 'x-pod': pod }).end('failing');
    return true;
  };
});
afterAll(() => pods.close());

let mesh: Mesh | undefined;
afterEach(async () => {
  failing.clear();
  await mesh?.close();
  mesh = undefined;
});

/** 127.0.0.9 is in the ServiceEntry but nothing listens there: connecting is refused. */
const config = (outlierDetection: string, endpoints = ['127.0.0.2', '127.0.0.3', '127.0.0.4']) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints:
${endpoints.map((a) => `  - { address: ${a} }`).join('\n')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: ${outlierDetection}
---
# Retries off: these tests count what outlier detection alone does with each failure.
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }], retries: { attempts: 0 } }]
`;

async function start(outlierDetection: string, endpoints?: string[]): Promise<{ clock: TestClock; events: EjectionEvent[] }> {
  const clock = new TestClock();
  const events: EjectionEvent[] = [];
  mesh = await meshFromYaml(config(outlierDetection, endpoints), { namespace: 'shop', clock, random: seededRandom(7), dns: false });
  mesh.on('ejection', (e) => events.push(e));
  return { clock, events };
}

/** Sends `n` requests one after another; returns who answered (the pod, or the error code). */
async function send(n: number): Promise<string[]> {
  const answered: string[] = [];
  for (let i = 0; i < n; i++) {
    try {
      const res = await mesh!.request(`http://reviews:${pods.port}/`);
      await res.body.dump();
      answered.push(String(res.headers['x-pod'] ?? `status ${res.statusCode}`));
    } catch (error) {
      answered.push((error as { code?: string }).code ?? 'error');
    }
  }
  return answered;
}

const distinct = (answered: string[]) => [...new Set(answered)].sort();

describe('outlier detection', () => {
  it('ejects a pod after consecutive 5xx, returns it after baseEjectionTime, and ejects it twice as long the next time', async () => {
    const { clock, events } = await start('{ consecutive5xxErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50 }');
    failing.set('127.0.0.2', 503);
    // Round robin over three pods: nine requests give the failing pod its three errors.
    await send(9);
    expect(events).toEqual([
      {
        action: 'eject',
        host: 'reviews.shop.svc.cluster.local',
        subset: undefined,
        port: pods.port,
        endpoint: `127.0.0.2:${pods.port}`,
        reason: 'consecutive-5xx',
        ejections: 1,
        durationMs: 30_000,
      },
    ]);
    expect(distinct(await send(12))).toEqual(['127.0.0.3', '127.0.0.4']);

    clock.advance(29_000);
    expect(distinct(await send(6))).toEqual(['127.0.0.3', '127.0.0.4']);
    clock.advance(1_000);
    expect(events.map((e) => e.action)).toEqual(['eject', 'uneject']);
    // Back in the balancing set, still failing: ejected again at once, now for twice as long.
    await send(9);
    expect(events.at(-1)).toMatchObject({ action: 'eject', ejections: 2, durationMs: 60_000 });
    clock.advance(59_000);
    expect(distinct(await send(6))).toEqual(['127.0.0.3', '127.0.0.4']);
    failing.clear();
    clock.advance(1_000);
    expect(distinct(await send(6))).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it('lowers the ejection multiplier for every healthy interval after a return', async () => {
    const { clock, events } = await start('{ consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 10s, maxEjectionPercent: 50 }');
    failing.set('127.0.0.2', 500);
    await send(6);
    clock.advance(10_000);
    await send(6);
    expect(events.at(-1)).toMatchObject({ action: 'eject', ejections: 2, durationMs: 20_000 });
    clock.advance(20_000);
    // Two healthy checks (an interval apart) take the multiplier from 2 back to 0.
    clock.advance(2_000);
    await send(6);
    expect(events.at(-1)).toMatchObject({ action: 'eject', ejections: 3, durationMs: 10_000 });
  });

  it('never ejects more than maxEjectionPercent of the hosts, counting the host being ejected', async () => {
    const { events } = await start('{ consecutive5xxErrors: 2, interval: 1s, maxEjectionPercent: 50 }');
    failing.set('127.0.0.2', 500);
    failing.set('127.0.0.3', 500);
    // One of three is 33%; a second would make 67%.
    const answered = await send(30);
    expect(events.filter((e) => e.action === 'eject')).toHaveLength(1);
    expect(distinct(answered.slice(-10))).toHaveLength(2);
  });

  it("ejects one host of three under Istio's default maxEjectionPercent of 10% (one may always be), and no second", async () => {
    const { events } = await start('{ consecutive5xxErrors: 2 }');
    failing.set('127.0.0.2', 500);
    failing.set('127.0.0.3', 500);
    await send(30);
    const ejected = events.filter((e) => e.action === 'eject').map((e) => e.endpoint);
    expect(ejected).toHaveLength(1);
    // The other failing host stays: two of three ejected would be 67% > 10%.
    const left = distinct(await send(30));
    expect(left).toHaveLength(2);
    expect(left).not.toContain(ejected[0]!.split(':')[0]);
  });

  it('counts gateway errors (502, 503, 504) apart from other 5xx with consecutiveGatewayErrors', async () => {
    const { events } = await start('{ consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, maxEjectionPercent: 100 }');
    failing.set('127.0.0.2', 502);
    failing.set('127.0.0.3', 500);
    await send(30);
    expect(events.map((e) => `${e.action} ${e.endpoint} ${e.reason}`)).toEqual([`eject 127.0.0.2:${pods.port} consecutive-gateway-failure`]);
  });

  it('counts only outlierDetectionHttpErrorCodes when they are set', async () => {
    const { events } = await start('{ consecutive5xxErrors: 2, outlierDetectionHttpErrorCodes: [429], maxEjectionPercent: 100 }');
    failing.set('127.0.0.2', 429);
    failing.set('127.0.0.3', 500);
    await send(30);
    expect(events.map((e) => `${e.action} ${e.endpoint}`)).toEqual([`eject 127.0.0.2:${pods.port}`]);
  });

  it('counts a refused connection as a gateway error when local-origin errors are not split', async () => {
    const { events } = await start('{ consecutive5xxErrors: 2, maxEjectionPercent: 100 }', ['127.0.0.2', '127.0.0.9']);
    const answered = await send(4);
    expect(answered.filter((a) => a === 'ECONNREFUSED')).toHaveLength(2);
    expect(events.map((e) => `${e.action} ${e.endpoint} ${e.reason}`)).toEqual([`eject 127.0.0.9:${pods.port} consecutive-5xx`]);
    expect(distinct(await send(6))).toEqual(['127.0.0.2']);
  });

  it('with splitExternalLocalOriginErrors, counts local-origin failures on their own counter only', async () => {
    const { events } = await start(
      '{ consecutive5xxErrors: 0, splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, maxEjectionPercent: 100 }',
      ['127.0.0.2', '127.0.0.3', '127.0.0.9'],
    );
    failing.set('127.0.0.2', 503);
    await send(30);
    expect(events.map((e) => `${e.action} ${e.endpoint} ${e.reason}`)).toEqual([`eject 127.0.0.9:${pods.port} consecutive-local-origin-failure`]);
  });

  it('balances over every host, ejected or not, once the healthy share falls below minHealthPercent (panic)', async () => {
    const { events } = await start('{ consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 50 }');
    failing.set('127.0.0.2', 500);
    failing.set('127.0.0.3', 500);
    await send(6);
    expect(events.filter((e) => e.action === 'eject')).toHaveLength(2);
    // One healthy host of three (33%) is below 50%: Envoy's panic mode spreads over all three.
    expect(distinct(await send(9))).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it('without minHealthPercent (Istio sets the panic threshold to 0) keeps ejected hosts out', async () => {
    const { events } = await start('{ consecutive5xxErrors: 1, maxEjectionPercent: 100 }');
    failing.set('127.0.0.2', 500);
    failing.set('127.0.0.3', 500);
    await send(6);
    expect(events.filter((e) => e.action === 'eject')).toHaveLength(2);
    expect(distinct(await send(9))).toEqual(['127.0.0.4']);
  });
});
