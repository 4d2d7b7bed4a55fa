import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';

// createMesh({ clock }): every timer of the mesh goes through the clock given, a clock written
// against the earlier contract (no wallNow, schedule without a kind) still works, and without one
// the mesh runs on the timer globals, so a test runner's fake timers drive it.

let pods: Pods;
let failing = false;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  pods.behave = (req, res, pod) => {
    if (!failing || pod !== '127.0.0.2') return false;
    req.resume();
    res.writeHead(503).end('failing');
    return true;
  };
});
afterAll(() => pods.close());

let mesh: Mesh | undefined;
afterEach(async () => {
  vi.useRealTimers();
  failing = false;
  await mesh?.close();
  mesh = undefined;
});

const delayed = (port: number) => `${reviewsServiceEntry(port, ['127.0.0.2'])}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - fault: { delay: { fixedDelay: 5s, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews } }]
`;

async function status(m: Mesh, path = '/'): Promise<number> {
  const res = await m.request(`http://reviews:${pods.port}${path}`);
  await res.body.dump();
  return res.statusCode;
}

describe('a clock written against the earlier contract', () => {
  it('gets every request timer through its schedule(delayMs, task); the rest it leaves out is filled in', async () => {
    const asked: { delayMs: number; kind: unknown; task: () => void }[] = [];
    let t = 0;
    const legacy: Clock = {
      now: () => t,
      // Two parameters, as before (the rest only records what else is passed).
      schedule(delayMs: number, task: () => void, ...rest: unknown[]) {
        asked.push({ delayMs, kind: rest[0], task });
        return () => undefined;
      },
    };
    mesh = await meshFromYaml(delayed(pods.port), { namespace: 'shop', dns: false, telemetry: false, clock: legacy });
    const pending = status(mesh);
    await vi.waitFor(() => expect(asked.map((a) => a.delayMs)).toContain(5_000));
    const delay = asked.find((a) => a.delayMs === 5_000)!;
    expect(delay.kind).toBe('request');
    t += 5_000;
    delay.task();
    expect(await pending).toBe(200);
    // No wallNow given: inspection shows real wall-clock time.
    expect(Math.abs(Date.parse(mesh.inspect().takenAt) - Date.now())).toBeLessThan(60_000);
  });
});

describe('without a clock', () => {
  it("runs on the timer globals, so fake timers installed after createMesh drive the mesh's timers", async () => {
    mesh = await meshFromYaml(delayed(pods.port), { namespace: 'shop', dns: false, telemetry: false });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let settled = false;
    const pending = status(mesh).finally(() => {
      settled = true;
    });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    vi.useRealTimers();
    expect(await pending).toBe(200);
  });
});

describe('mesh.close() and the clock', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(() => removeTempDir(dir));

  it('leaves no timer of the mesh on the clock: breaker windows, outlier checks, file polls, telemetry rechecks', async () => {
    await writeFile(
      join(dir, 'mesh.yaml'),
      `${reviewsServiceEntry(pods.port, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection: { consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
`,
    );
    // The retry of the 503 waits out its back-off by itself.
    const clock = new TestClock({ auto: isRequestTimer });
    mesh = await createMesh({ namespace: 'shop', config: [dir], dns: false, clock, random: seededRandom(1), breakers: { reviews: { volumeThreshold: 100 } } });
    failing = true;
    const ejected = new Promise((resolve) => mesh!.once('ejection', resolve));
    for (let i = 0; i < 2; i++) await status(mesh);
    await ejected;
    const kinds = new Set(clock.waiting.map((t) => t.delayMs));
    // Breaker rotation (10 s window in 10 buckets), the ejection's interval check, the file poll.
    expect([...kinds]).toEqual(expect.arrayContaining([1_000, 2_000]));
    expect(clock.waiting.some(isRequestTimer)).toBe(false);
    await mesh.close();
    mesh = undefined;
    expect(clock.waiting).toEqual([]);
  });
});
