import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshOptions } from '../../src/index.js';
import type { TestTimer } from '../helpers/test-clock.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import type { SeenRequest } from '../helpers/request-log.js';
import { RequestLog } from '../helpers/request-log.js';

/**
 * The fault table of docs/resilience.md: one pod of a three-pod service misbehaves, the caller
 * sends a stated number of requests through mesh.fetch, and each test asserts how many failed as
 * the caller saw them, with retries off (`attempts: 0`) and on. ROUND_ROBIN over three endpoints:
 * requests sent one after another reach each endpoint every third time, whatever the offset the
 * balancer starts at, so counts without retries are exact. With retries a retry moves the rotation,
 * so those tests assert the failures (exact) and bounds on what the bad pod received.
 *
 * Failures as the caller sees them: a status other than 200, or `error` when mesh.fetch (or
 * reading the body) rejects; where Envoy would answer a local 503 instead of an error, the docs
 * say so.
 */
const BAD = '127.0.0.2';
/** In the service instead of a third pod for the "refused" fault: nothing listens there. */
const NOTHING = '127.0.0.9';
const N = 30;
/** The timeout under test, held by the clock until the test fires it (no real-time wait). */
const TIMEOUT_MS = 200;
const isTimeout = (t: TestTimer): boolean => isRequestTimer(t) && t.delayMs === TIMEOUT_MS;
/** A clock on which the timeouts wait for the test and retry back-offs run by themselves. */
const timeoutClock = (): TestClock => new TestClock({ auto: (t) => isRequestTimer(t) && !isTimeout(t) });

let pods: Pods;
let log: RequestLog;
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start([BAD, '127.0.0.3', '127.0.0.4']);
  log = new RequestLog(pods);
});

afterEach(async () => {
  log.take = undefined;
  log.clear();
  await Promise.all(meshes.splice(0).map((m) => m.close()));
  if (!pods.running(BAD)) await pods.revive(BAD);
});

afterAll(async () => {
  await pods.close();
});

const OFF = '{ attempts: 0 }';
/** Istio's documented example conditions, which retry a per-try timeout (gateway-error). */
const ON_WITH_PER_TRY = `{ attempts: 2, perTryTimeout: ${TIMEOUT_MS}ms, retryOn: "gateway-error,connect-failure,refused-stream" }`;

/** `retries` undefined: no retries field, so Istio's default policy. */
function config(retries: string | undefined, options: { timeout?: string; endpoints?: readonly string[] } = {}): string {
  const endpoints = options.endpoints ?? [BAD, '127.0.0.3', '127.0.0.4'];
  const fields = [retries === undefined ? '' : `retries: ${retries}`, options.timeout ? `timeout: ${options.timeout}` : ''].filter(Boolean);
  return `
${reviewsServiceEntry(pods.port, endpoints)}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
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
${fields.map((f) => `    ${f}\n`).join('')}`;
}

async function mesh(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  const m = await meshFromYaml(yaml, { namespace: 'shop', random: seededRandom(7), dns: false, ...options });
  meshes.push(m);
  return m;
}

interface Outcome {
  /** `ok` (200 with its whole body), another status, or `error` (the call or its body rejected). */
  readonly result: string;
  readonly pod: string | null;
}

async function call(m: Mesh): Promise<Outcome> {
  try {
    const res = await m.fetch(`http://reviews:${pods.port}/`);
    const pod = res.headers.get('x-pod');
    try {
      await res.text();
    } catch {
      return { result: 'error', pod };
    }
    return { result: res.status === 200 ? 'ok' : String(res.status), pod };
  } catch {
    return { result: 'error', pod: null };
  }
}

async function callEach(m: Mesh, n: number): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (let i = 0; i < n; i++) out.push(await call(m));
  return out;
}

/** How many calls ended each way, e.g. `{ ok: 20, error: 10 }`. */
function tally(outcomes: readonly Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o.result] = (counts[o.result] ?? 0) + 1;
  return counts;
}

const toBad = () => log.count((s) => s.pod === BAD);

describe('fault: a pod killed mid-traffic (two requests in flight on it, then refused)', () => {
  /**
   * Six requests at once: two reach each pod; the bad pod holds its two. It is killed (its
   * connections destroyed), then 24 more requests go one after another, then it comes back.
   */
  async function run(m: Mesh): Promise<{ inFlight: Outcome[]; after: Outcome[]; revived: Outcome[] }> {
    log.take = (s) => s.pod === BAD;
    const first = Array.from({ length: 6 }, () => call(m));
    await log.until(() => log.seen.length === 6);
    expect(toBad()).toBe(2);
    await pods.kill(BAD);
    const inFlight = await Promise.all(first);
    log.take = undefined;
    const after = await callEach(m, N - 6);
    await pods.revive(BAD);
    log.clear();
    const revived = await callEach(m, 3);
    return { inFlight, after, revived };
  }

  it(`retries off: ${N} requests, 10 fail (the 2 in flight, then every third)`, async () => {
    const m = await mesh(config(OFF));
    const { inFlight, after, revived } = await run(m);
    expect(tally(inFlight)).toEqual({ ok: 4, error: 2 });
    expect(tally(after)).toEqual({ ok: 16, error: 8 });
    // Back on its address, it serves its turn again.
    expect(tally(revived)).toEqual({ ok: 3 });
    expect(revived.map((o) => o.pod)).toContain(BAD);
  });

  it(`default retries: ${N} requests, 2 fail (the 2 in flight: reset after they were sent, not retried)`, async () => {
    const m = await mesh(config(undefined));
    const { inFlight, after, revived } = await run(m);
    expect(tally(inFlight)).toEqual({ ok: 4, error: 2 });
    // Refused connections are retried on another pod (connect-failure).
    expect(tally(after)).toEqual({ ok: 24 });
    expect(tally(revived)).toEqual({ ok: 3 });
    expect(revived.map((o) => o.pod)).toContain(BAD);
  });
});

describe('fault: a pod that refuses connections (nothing listens on its address)', () => {
  const endpoints = [NOTHING, '127.0.0.3', '127.0.0.4'];

  it(`retries off: ${N} requests, 10 fail (every third goes to the dead address)`, async () => {
    const m = await mesh(config(OFF, { endpoints }));
    expect(tally(await callEach(m, N))).toEqual({ ok: 20, error: 10 });
  });

  it(`default retries: ${N} requests, none fail (connect-failure is retried on another pod)`, async () => {
    const m = await mesh(config(undefined, { endpoints }));
    expect(tally(await callEach(m, N))).toEqual({ ok: N });
  });
});

describe('fault: a pod that accepts and never answers', () => {
  /** The bad pod holds every request; its timer is fired once it has one. */
  function silent(clock: TestClock): SeenRequest[] {
    const held: SeenRequest[] = [];
    log.take = (s) => {
      if (s.pod !== BAD) return false;
      held.push(s);
      setImmediate(() => clock.runNext(isTimeout));
      return true;
    };
    return held;
  }

  it(`retries off, route timeout ${TIMEOUT_MS}ms: ${N} requests, 10 fail with 504`, async () => {
    const clock = timeoutClock();
    const m = await mesh(config(OFF, { timeout: `${TIMEOUT_MS}ms` }), { clock });
    const held = silent(clock);
    expect(tally(await callEach(m, N))).toEqual({ ok: 20, 504: 10 });
    expect(held).toHaveLength(10);
  });

  it(`default conditions with a perTryTimeout: ${N} requests, 10 fail with 504 (a timeout is not a connect failure)`, async () => {
    const clock = timeoutClock();
    const m = await mesh(config(`{ attempts: 2, perTryTimeout: ${TIMEOUT_MS}ms }`), { clock });
    const held = silent(clock);
    expect(tally(await callEach(m, N))).toEqual({ ok: 20, 504: 10 });
    expect(held).toHaveLength(10);
  });

  it(`retries on gateway-error with perTryTimeout ${TIMEOUT_MS}ms: ${N} requests, none fail`, async () => {
    const clock = timeoutClock();
    const m = await mesh(config(ON_WITH_PER_TRY), { clock });
    const held = silent(clock);
    const outcomes = await callEach(m, N);
    expect(tally(outcomes)).toEqual({ ok: N });
    expect(held.length).toBeGreaterThanOrEqual(5);
    expect(clock.scheduled.filter((t) => isTimeout(t) && t.state === 'ran')).toHaveLength(held.length);
  });
});

describe('fault: a pod that answers slowly', () => {
  it(`no timeout (Istio's default): ${N} requests, none fail with retries off or on`, async () => {
    log.take = (s) => {
      if (s.pod !== BAD) return false;
      // Slow, with no timeout to exceed: the caller waits. The delay is the fault, not a sync point.
      setTimeout(() => s.res.writeHead(200, { 'x-pod': s.pod }).end('late'), 30);
      return true;
    };
    for (const retries of [OFF, undefined]) {
      const m = await mesh(config(retries));
      const outcomes = await callEach(m, N);
      expect(tally(outcomes)).toEqual({ ok: N });
      expect(outcomes.filter((o) => o.pod === BAD)).toHaveLength(10);
    }
  });

  /** The bad pod answers, but only after the timeout has fired. */
  function slowerThanTimeout(clock: TestClock): void {
    log.take = (s) => {
      if (s.pod !== BAD) return false;
      setImmediate(() => {
        clock.runNext(isTimeout);
        setImmediate(() => s.res.writeHead(200, { 'x-pod': s.pod }).end('too late'));
      });
      return true;
    };
  }

  it(`retries off, slower than the route timeout: ${N} requests, 10 fail with 504; the late answers are dropped`, async () => {
    const clock = timeoutClock();
    const m = await mesh(config(OFF, { timeout: `${TIMEOUT_MS}ms` }), { clock });
    slowerThanTimeout(clock);
    const outcomes = await callEach(m, N);
    expect(tally(outcomes)).toEqual({ ok: 20, 504: 10 });
    expect(outcomes.filter((o) => o.pod === BAD)).toHaveLength(0);
  });

  it(`retries on gateway-error, slower than perTryTimeout: ${N} requests, none fail, none answered by the slow pod`, async () => {
    const clock = timeoutClock();
    const m = await mesh(config(ON_WITH_PER_TRY), { clock });
    slowerThanTimeout(clock);
    const outcomes = await callEach(m, N);
    expect(tally(outcomes)).toEqual({ ok: N });
    expect(outcomes.filter((o) => o.pod === BAD)).toHaveLength(0);
    expect(toBad()).toBeGreaterThanOrEqual(5);
  });
});

describe('fault: a pod that resets mid-response (headers and part of the body, then the connection dies)', () => {
  function resetMidResponse(): void {
    log.take = (s) => {
      if (s.pod !== BAD) return false;
      s.res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000', 'x-pod': s.pod });
      s.res.write('x'.repeat(100), () => s.res.socket?.destroy());
      return true;
    };
  }

  for (const [name, retries] of [
    ['retries off', OFF],
    ['default retries', undefined],
    ['retryOn reset,5xx', '{ attempts: 2, retryOn: "reset,5xx" }'],
  ] as const) {
    it(`${name}: ${N} requests, 10 fail (a response already started is never retried)`, async () => {
      const m = await mesh(config(retries));
      resetMidResponse();
      const outcomes = await callEach(m, N);
      expect(tally(outcomes)).toEqual({ ok: 20, error: 10 });
      // The caller got the bad pod's headers: the failure is the truncated body.
      expect(outcomes.filter((o) => o.result === 'error').every((o) => o.pod === BAD)).toBe(true);
      expect(toBad()).toBe(10);
    });
  }
});

describe('fault: a pod that resets before answering (reads the request, then the connection dies)', () => {
  function resetBeforeResponse(): void {
    log.take = (s) => {
      if (s.pod !== BAD) return false;
      s.res.socket?.destroy();
      return true;
    };
  }

  it(`default retries: ${N} requests, 10 fail (a reset after the request was sent is not a connect failure)`, async () => {
    const m = await mesh(config(undefined));
    resetBeforeResponse();
    expect(tally(await callEach(m, N))).toEqual({ ok: 20, error: 10 });
  });

  it(`retryOn reset: ${N} requests, none fail`, async () => {
    const m = await mesh(config('{ attempts: 2, retryOn: reset }'));
    resetBeforeResponse();
    expect(tally(await callEach(m, N))).toEqual({ ok: N });
    expect(toBad()).toBeGreaterThanOrEqual(5);
  });
});

describe('fault: a burst of 503s from one pod (its first 5 answers)', () => {
  const BURST = 5;
  /** Returns how many 503s the bad pod has sent. */
  function burst(): () => number {
    let sent = 0;
    log.take = (s) => {
      if (s.pod !== BAD || sent >= BURST) return false;
      sent++;
      s.res.writeHead(503, { 'content-type': 'text/plain', 'x-pod': s.pod }).end('overloaded');
      return true;
    };
    return () => sent;
  }

  it(`retries off: ${N} requests, exactly the ${BURST} that reached the bad pod during the burst fail with 503`, async () => {
    const m = await mesh(config(OFF));
    const sent = burst();
    expect(tally(await callEach(m, N))).toEqual({ ok: N - BURST, 503: BURST });
    expect(sent()).toBe(BURST);
  });

  it(`default retries: ${N} requests, none fail (503 is retried on another pod)`, async () => {
    const m = await mesh(config(undefined));
    const sent = burst();
    expect(tally(await callEach(m, N))).toEqual({ ok: N });
    expect(sent()).toBe(BURST);
  });
});
