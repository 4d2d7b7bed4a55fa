import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import type { SeenRequest } from '../helpers/request-log.js';
import { RequestLog } from '../helpers/request-log.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';

/**
 * A request body that cannot be replayed whole is never resent, and the upstream never takes a
 * part of it for the whole request: when the caller's stream fails (or stalls past the per-try
 * timeout) the attempt's connection is reset, the caller gets the stream's error (or the
 * timeout), and no retry goes out, whatever `retryOn` says.
 */
let pods: Pods;
let log: RequestLog;
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  log = new RequestLog(pods);
});
afterEach(async () => {
  log.take = undefined;
  log.clear();
  await Promise.all(meshes.splice(0).map((m) => m.close()));
});
afterAll(() => pods.close());

function config(retries: string): string {
  return `
${reviewsServiceEntry(pods.port, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews } }], retries: ${retries} }]
`;
}

async function mesh(retries: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  const m = await meshFromYaml(config(retries), { namespace: 'shop', random: seededRandom(11), ...options });
  meshes.push(m);
  return m;
}

/** How the pod's server saw the request end: its whole body arrived, or the connection went first. */
function ending(seen: SeenRequest): Promise<'complete' | 'aborted'> {
  const req = seen.req;
  if (req.complete) return Promise.resolve('complete');
  return new Promise((resolve) => {
    req.once('end', () => resolve('complete'));
    req.once('close', () => resolve(req.complete ? 'complete' : 'aborted'));
  });
}

/** A gate the body waits on: `open()` lets it go on. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

const RETRY_EVERYTHING = "{ attempts: 3, retryOn: 'reset,5xx,gateway-error,connect-failure,refused-stream,reset-before-request' }";

describe('a request body stream that fails', () => {
  it("Node Readable: the caller gets the stream's error, the pod sees an aborted request, nothing is resent", async () => {
    const m = await mesh(RETRY_EVERYTHING);
    const failure = new Error('disk read failed');
    const body = new Readable({ read() {} });
    body.push('first half of the upload;');
    const pending = m.request(`http://reviews:${pods.port}/upload`, { method: 'POST', body });
    await log.until(() => log.seen.length === 1);
    body.destroy(failure);
    await expect(pending).rejects.toBe(failure);
    expect(await ending(log.seen[0]!)).toBe('aborted');
    // A follow-up request gets through; no retry of the upload came before it.
    const after = await m.request(`http://reviews:${pods.port}/after`);
    await after.body.text();
    expect(log.seen.map((s) => s.path)).toEqual(['/upload', '/after']);
  });

  it('async iterator: the same, with a body that throws after its first chunk', async () => {
    const m = await mesh(RETRY_EVERYTHING);
    const failure = new Error('source went away');
    const sent = gate();
    async function* upload(): AsyncGenerator<string> {
      yield 'chunk one;';
      await sent.wait;
      throw failure;
    }
    const pending = m.request(`http://reviews:${pods.port}/upload`, { method: 'POST', body: asBody(upload()) });
    await log.until(() => log.seen.length === 1);
    sent.open();
    await expect(pending).rejects.toBe(failure);
    expect(await ending(log.seen[0]!)).toBe('aborted');
    const after = await m.request(`http://reviews:${pods.port}/after`);
    await after.body.text();
    expect(log.seen.map((s) => s.path)).toEqual(['/upload', '/after']);
  });

  it("web ReadableStream through mesh.fetch (duplex half): fetch rejects with the stream's error as cause", async () => {
    const m = await mesh(RETRY_EVERYTHING);
    const failure = new Error('upload cancelled by the producer');
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        controller = c;
        c.enqueue(new TextEncoder().encode('the start of a streamed upload;'));
      },
    });
    const pending = m.fetch(`http://reviews:${pods.port}/upload`, { method: 'POST', body, duplex: 'half' });
    const outcome = pending.then(
      () => undefined,
      (e: unknown) => e,
    );
    await log.until(() => log.seen.length === 1);
    controller.error(failure);
    const error = await outcome;
    expect(error).toBeInstanceOf(TypeError);
    expect((error as TypeError).cause).toBe(failure);
    expect(await ending(log.seen[0]!)).toBe('aborted');
    const after = await m.fetch(`http://reviews:${pods.port}/after`);
    await after.text();
    expect(log.seen.map((s) => s.path)).toEqual(['/upload', '/after']);
  });

  it("with retries off the stream error is the caller's, not a pod failure: outlier detection ejects nobody", async () => {
    const m = await meshFromYaml(
      `${config('{ attempts: 0 }')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    outlierDetection: { consecutive5xxErrors: 1, consecutiveGatewayErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100 }
`,
      { namespace: 'shop' },
    );
    meshes.push(m);
    const ejected: string[] = [];
    m.on('ejection', (e) => ejected.push(e.endpoint));
    for (let i = 0; i < 4; i++) {
      const failure = new Error(`read ${i} failed`);
      const body = new Readable({ read() {} });
      // Heard here too: a mesh that answered without reading the body leaves its error unheard.
      body.on('error', () => undefined);
      body.push('part;');
      const pending = m.request(`http://reviews:${pods.port}/upload`, { method: 'POST', body });
      // An ejected pod set answers 503 at once, without the pod seeing anything.
      await Promise.race([log.until(() => log.seen.length === i + 1), pending.catch(() => undefined)]);
      body.destroy(failure);
      await expect(pending).rejects.toBe(failure);
    }
    expect(ejected).toEqual([]);
  });
});

describe('a request body stream that stalls past perTryTimeout', () => {
  it('the caller gets the timeout (504), the pod sees an aborted request, and the upload is not resent when the stream goes on', async () => {
    const clock = new TestClock();
    const m = await mesh("{ attempts: 3, perTryTimeout: 5s, retryOn: 'reset,5xx,gateway-error' }", { clock });
    const resumed = gate();
    async function* upload(): AsyncGenerator<string> {
      yield 'the first part;';
      await resumed.wait;
      yield 'the rest.';
    }
    const pending = m.request(`http://reviews:${pods.port}/upload`, { method: 'POST', body: asBody(upload()) });
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(5000);
    // Either the caller is answered, or a retry's back-off is scheduled (which must not happen).
    const first = await Promise.race([pending, clock.until(isRequestTimer).then(() => 'a retry was scheduled' as const)]);
    expect(first).not.toBe('a retry was scheduled');
    const res = await pending;
    expect(res.statusCode).toBe(504);
    expect(await res.body.text()).toBe('upstream request timeout');
    expect(await ending(log.seen[0]!)).toBe('aborted');
    // The stream goes on; any back-off the mesh may have scheduled is run: still nothing resent.
    resumed.open();
    await new Promise((r) => setImmediate(r));
    clock.advance(60_000);
    const after = await m.request(`http://reviews:${pods.port}/after`);
    await after.body.text();
    expect(log.seen.map((s) => s.path)).toEqual(['/upload', '/after']);
  });

  it('a body fully sent before the per-try timeout is still retried whole on the other pod', async () => {
    const clock = new TestClock();
    const m = await mesh("{ attempts: 2, perTryTimeout: 5s, retryOn: 'reset,5xx,gateway-error' }", { clock });
    let silent: string | undefined;
    log.take = (s) => {
      silent ??= s.pod;
      return s.pod === silent;
    };
    const pending = m.request(`http://reviews:${pods.port}/upload`, { method: 'POST', body: Readable.from(['whole ', 'body']) });
    await log.until(() => log.seen.length === 1);
    await waitForBody(log.seen[0]!);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(5000);
    expect((await clock.next(isRequestTimer)).delayMs).toBeLessThan(25);
    const res = await pending;
    expect(res.statusCode).toBe(200);
    await res.body.text();
    expect(log.seen).toHaveLength(2);
    expect(log.seen[1]!.pod).not.toBe(silent);
    expect(await log.seen[1]!.body).toBe('whole body');
  });
});

/** undici sends an async iterable as a body; its request types list only Node streams. */
function asBody(iterable: AsyncIterable<string>): Readable {
  return iterable as unknown as Readable;
}

/** Resolves once the pod has read the request's whole body. */
function waitForBody(seen: SeenRequest): Promise<void> {
  return seen.req.complete ? Promise.resolve() : new Promise((resolve) => seen.req.once('end', () => resolve()));
}
