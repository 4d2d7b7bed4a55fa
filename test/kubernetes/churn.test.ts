import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import { createMesh } from '../../src/index.js';
import type { KubernetesOptions, Mesh, MeshOptions } from '../../src/index.js';
import type { FakeObject } from '../helpers/fake-kube-api.js';
import { GracefulPod } from '../helpers/kube-objects.js';
import { KubeCluster } from '../helpers/kube-cluster.js';
import { Pods } from '../helpers/pods.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// Churn replayed against the fake API server (the official client's path, as in a cluster) while
// traffic flows through mesh.fetch to real pods on loopback addresses. Each step waits until the
// mesh serves the new state (mesh.inspect()), never for a time.
const WAIT = { timeout: 15_000, interval: 10 };
const HOST = 'reviews.shop.svc.cluster.local';
const URL = 'http://reviews:9080/';

let cluster: KubeCluster;
let dir: string;
let mesh: Mesh | undefined;
const closers: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  cluster = await KubeCluster.start();
  dir = await makeTempDir();
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  await Promise.all(closers.splice(0).map((c) => c().catch(() => undefined)));
  await cluster.close();
  await removeTempDir(dir);
});

async function start(extra: Partial<KubernetesOptions> = {}, options: Partial<MeshOptions> = {}): Promise<Mesh> {
  mesh = await createMesh({ namespace: 'shop', dns: false, random: seededRandom(11), ...options, discovery: await cluster.discovery(dir, extra) });
  return mesh;
}

async function gracefulPod(name: string, address: string): Promise<GracefulPod> {
  const p = await GracefulPod.start(name, address);
  closers.push(() => p.stop());
  return p;
}

/** The addresses the mesh sends `subset` of reviews:9080 to now (ready endpoints only). */
function serving(m: Mesh, subset?: string): string[] {
  const view = m.inspect().clusters.find((c) => c.host === HOST && c.port === 9080 && c.subset === subset);
  return (view?.endpoints ?? [])
    .filter((e) => e.health !== 'terminating')
    .map((e) => e.address.slice(0, e.address.lastIndexOf(':')))
    .sort();
}

async function untilServing(m: Mesh, addresses: string[], subset?: string): Promise<void> {
  await vi.waitFor(() => expect(serving(m, subset)).toEqual([...addresses].sort()), WAIT);
}

interface Outcome {
  readonly phase: string;
  readonly status: number;
  readonly pod: string;
  readonly text: string;
}

/**
 * Requests through mesh.fetch from `workers` loops until stopped. Each outcome carries the phase
 * the test was in when the request started; `after(n)` resolves once n more have completed. Each
 * request carries its number in `x-seq`, counted from 0 in the order they start.
 */
class Traffic {
  phase = 'start';
  /** How many requests have started: the number the next one gets. */
  started = 0;
  readonly outcomes: Outcome[] = [];
  private running = true;
  private waiters: { n: number; resolve: () => void }[] = [];
  private readonly loops: Promise<void>[];
  private readonly inFlight = new Set<Promise<Outcome>>();

  constructor(
    private readonly m: Mesh,
    private readonly url: string,
    workers = 4,
    private readonly headers: Record<string, string> = {},
  ) {
    this.loops = Array.from({ length: workers }, () => this.loop());
  }

  after(more: number): Promise<void> {
    const n = this.outcomes.length + more;
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Resolves once every request under way now has completed (later ones are not waited for). */
  async drained(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  failures(test: (o: Outcome) => boolean = () => true): Outcome[] {
    return this.outcomes.filter((o) => o.status !== 200 && test(o));
  }

  /** How many requests of a phase each pod answered. */
  answered(phase: string): Map<string, number> {
    const counts = new Map<string, number>();
    for (const o of this.outcomes) if (o.phase === phase && o.status === 200) counts.set(o.pod, (counts.get(o.pod) ?? 0) + 1);
    return counts;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const phase = this.phase;
      const seq = this.started++;
      const attempt = (async (): Promise<Outcome> => {
        try {
          const res = await this.m.fetch(this.url, { headers: { ...this.headers, 'x-seq': String(seq) } });
          const text = await res.text();
          return { phase, status: res.status, pod: res.headers.get('x-pod') ?? '', text };
        } catch (error) {
          // fetch's TypeError says only "fetch failed": the transport error is its cause.
          const cause = (error as { cause?: unknown }).cause;
          return { phase, status: 0, pod: '', text: cause === undefined ? String(error) : `${String(error)}: ${String(cause)}` };
        }
      })();
      this.inFlight.add(attempt);
      const outcome = await attempt;
      this.inFlight.delete(attempt);
      this.outcomes.push(outcome);
      const n = this.outcomes.length;
      this.waiters = this.waiters.filter((w) => (n >= w.n ? (w.resolve(), false) : true));
      // A local reply needs no I/O: without this a failing loop would starve the timers.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

function describeFailures(outcomes: Outcome[]): string[] {
  return outcomes.map((o) => `${o.phase}: ${o.status} ${o.text.slice(0, 200)}`);
}

describe('churn through the Kubernetes API while traffic flows', () => {
  it('a rolling update: new pods become ready, old ones terminate (finishing what they carry) and go; no request fails', async () => {
    const old = [await gracefulPod('old-1', '127.0.0.2'), await gracefulPod('old-2', '127.0.0.3'), await gracefulPod('old-3', '127.0.0.4')];
    const fresh = [await gracefulPod('new-1', '127.0.0.5'), await gracefulPod('new-2', '127.0.0.6'), await gracefulPod('new-3', '127.0.0.7')];
    cluster.service('reviews', 9080);
    for (const p of old) cluster.pod('reviews', p.name, p.address, p.port);
    const m = await start();
    const traffic = new Traffic(m, URL);
    await traffic.after(40);
    const heldAnswered: Promise<string>[] = [];

    for (let i = 0; i < 3; i++) {
      const next = fresh[i]!;
      const prev = old[i]!;
      const live = [...old.slice(i), ...fresh.slice(0, i)].map((p) => p.address);
      // maxSurge 1, maxUnavailable 0: the new pod starts not ready; no request reaches it.
      cluster.pod('reviews', next.name, next.address, next.port, 'not-ready');
      await traffic.after(20);
      expect(serving(m)).toEqual([...live].sort());
      cluster.pod('reviews', next.name, next.address, next.port, 'ready');
      await untilServing(m, [...live, next.address]);
      await traffic.after(20);

      // The old pod is in the middle of a request when it starts terminating.
      prev.hold = true;
      const arrived = prev.nextArrival();
      heldAnswered.push(m.fetch(URL, { headers: { 'x-probe': prev.name } }).then(async (r) => `${r.status} ${await r.text()}`, String));
      await arrived;
      cluster.pod('reviews', prev.name, prev.address, prev.port, 'terminating');
      await untilServing(m, [...live.filter((a) => a !== prev.address), next.address]);
      // Requests sent before the mesh applied the change may still arrive; none started since.
      const firstAfterGone = traffic.started;
      await traffic.after(20);
      expect(prev.sequences.filter((seq) => seq >= firstAfterGone)).toEqual([]);
      // The kubelet stops the container: it answers what it holds and, once the mesh has closed
      // its connections to the endpoint that left, exits; the endpoint goes.
      await prev.stop();
      cluster.remove('reviews', prev.name);
      await traffic.after(20);
    }
    traffic.phase = 'done';
    await traffic.after(100);
    await traffic.stop();

    expect(describeFailures(traffic.failures())).toEqual([]);
    expect([...traffic.answered('done').keys()].sort()).toEqual(['new-1', 'new-2', 'new-3']);
    // Some of the requests an old pod held at its termination were probes; every one got its answer.
    for (const answer of await Promise.all(heldAnswered)) expect(answer).toMatch(/^200 (old|new)-\d$/);
    for (const p of old) expect(p.received).toBeGreaterThan(0);
  }, 60_000);

  it('a scale to zero and back: 503 no healthy upstream only while there are no pods, none after', async () => {
    const a = await gracefulPod('a', '127.0.0.2');
    const b = await gracefulPod('b', '127.0.0.3');
    const c = await gracefulPod('c', '127.0.0.4');
    cluster.service('reviews', 9080);
    cluster.pod('reviews', 'a', a.address, a.port);
    cluster.pod('reviews', 'b', b.address, b.port);
    const m = await start();
    const traffic = new Traffic(m, URL);
    await traffic.after(40);

    // kubectl scale --replicas=0: both pods terminate, then go.
    traffic.phase = 'zero';
    cluster.api.batch(() => {
      cluster.pod('reviews', 'a', a.address, a.port, 'terminating');
      cluster.pod('reviews', 'b', b.address, b.port, 'terminating');
    });
    await untilServing(m, []);
    // Requests routed to a or b before they turned terminating may not have reached them yet: the
    // pods stop once those are done, as a pod's grace period lets them be. (Stopping sooner races
    // the connection a request is about to be written on; that is not what this test is about.)
    await traffic.drained();
    await a.stop();
    await b.stop();
    cluster.remove('reviews', 'a');
    cluster.remove('reviews', 'b');
    await traffic.after(30);

    // Scaled back to one: a new pod becomes ready.
    cluster.pod('reviews', 'c', c.address, c.port, 'not-ready');
    cluster.pod('reviews', 'c', c.address, c.port, 'ready');
    await untilServing(m, [c.address]);
    traffic.phase = 'back';
    await traffic.after(60);
    await traffic.stop();

    expect(describeFailures(traffic.failures((o) => o.phase !== 'zero'))).toEqual([]);
    const zero = traffic.failures((o) => o.phase === 'zero');
    expect(zero.length).toBeGreaterThan(0);
    for (const o of zero) {
      expect(o.status).toBe(503);
      expect(o.text).toMatch(
        /^no healthy upstream: no ready reviews\.shop\.svc\.cluster\.local port 9080 \((2 endpoint\(s\) not ready or terminating|its EndpointSlices list no endpoint for this port)\)$/,
      );
    }
    expect([...traffic.answered('back').keys()]).toEqual(['c']);
  }, 60_000);

  it("a pod's label change moves it into and out of a subset; traffic for the subset follows", async () => {
    const pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    closers.push(() => pods.close());
    cluster.service('reviews', 9080);
    cluster.pod('reviews', 'a', '127.0.0.2', pods.port, 'ready', { version: 'v1' });
    cluster.pod('reviews', 'b', '127.0.0.3', pods.port, 'ready', { version: 'v2' });
    cluster.pod('reviews', 'c', '127.0.0.4', pods.port, 'ready', { version: 'v1' });
    cluster.api.create(destinationRule());
    cluster.api.create(virtualService([{ destination: { host: 'reviews', subset: 'v2' } }]));
    const m = await start();
    const traffic = new Traffic(m, URL);
    traffic.phase = 'b';
    await traffic.after(60);

    traffic.phase = 'moving';
    cluster.relabel('reviews', 'c', { version: 'v2' });
    await untilServing(m, ['127.0.0.3', '127.0.0.4'], 'v2');
    traffic.phase = 'b+c';
    await traffic.after(80);

    traffic.phase = 'moving';
    cluster.relabel('reviews', 'b', { version: 'v1' });
    await untilServing(m, ['127.0.0.4'], 'v2');
    traffic.phase = 'c';
    await traffic.after(60);
    await traffic.stop();

    expect(describeFailures(traffic.failures())).toEqual([]);
    expect([...traffic.answered('b').keys()]).toEqual(['127.0.0.3']);
    expect([...traffic.answered('b+c').keys()].sort()).toEqual(['127.0.0.3', '127.0.0.4']);
    expect([...traffic.answered('c').keys()]).toEqual(['127.0.0.4']);
  }, 60_000);

  it('a VirtualService weight change moves the distribution (within ±8 points over 400 requests)', async () => {
    const pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
    closers.push(() => pods.close());
    cluster.service('reviews', 9080);
    cluster.pod('reviews', 'a', '127.0.0.2', pods.port, 'ready', { version: 'v1' });
    cluster.pod('reviews', 'b', '127.0.0.3', pods.port, 'ready', { version: 'v2' });
    cluster.api.create(destinationRule());
    cluster.api.create(virtualService(split(90, 10)));
    const m = await start();
    const traffic = new Traffic(m, URL);
    traffic.phase = '90/10';
    await traffic.after(410);

    traffic.phase = 'changing';
    const applied = once(m, 'snapshot');
    cluster.api.update(virtualService(split(20, 80)));
    await applied;
    traffic.phase = '20/80';
    await traffic.after(410);
    await traffic.stop();

    expect(describeFailures(traffic.failures())).toEqual([]);
    // Binomial, n >= 400: one standard deviation is at most 2.5 points; 8 is over 3.
    expect(share(traffic.answered('90/10'), '127.0.0.2')).toBeGreaterThan(0.82);
    expect(share(traffic.answered('20/80'), '127.0.0.2')).toBeGreaterThan(0.12);
    expect(share(traffic.answered('20/80'), '127.0.0.2')).toBeLessThan(0.28);
  }, 60_000);

  it('watches dropped, then resumed from a compacted history (410 Gone, re-list) mid-churn: the difference applies and no request fails', async () => {
    const pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    closers.push(() => pods.close());
    cluster.service('reviews', 9080);
    cluster.pod('reviews', 'a', '127.0.0.2', pods.port);
    cluster.pod('reviews', 'b', '127.0.0.3', pods.port);
    const m = await start();
    const traffic = new Traffic(m, URL);
    await traffic.after(40);
    const restarts = (): number => m.kubernetesStatus()!.collections.find((c) => c.description.includes('EndpointSlice in shop'))!.status.restarts;
    const open = m.kubernetesStatus()!.collections.length;
    await vi.waitFor(() => expect(cluster.api.openWatches).toBe(open), WAIT);
    const before = restarts();

    // A write the slice watch does not see, then the server forgets its history and drops every
    // stream: the watch resumes from a resourceVersion too old (410) and lists again.
    cluster.api.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'elsewhere', namespace: 'other' } } as FakeObject);
    cluster.api.compact();
    cluster.api.dropWatches();
    // While the watches are down: c becomes ready, a terminates.
    cluster.pod('reviews', 'c', '127.0.0.4', pods.port);
    cluster.pod('reviews', 'a', '127.0.0.2', pods.port, 'terminating');
    await untilServing(m, ['127.0.0.3', '127.0.0.4']);
    traffic.phase = 'after';
    await traffic.after(80);
    await traffic.stop();

    // Once for the dropped stream, once for the 410.
    expect(restarts()).toBeGreaterThanOrEqual(before + 2);
    expect(cluster.api.requests.some((r) => r.url.includes('endpointslices') && !r.url.includes('watch=') && r.url.includes('limit='))).toBe(true);
    expect(describeFailures(traffic.failures())).toEqual([]);
    expect([...traffic.answered('after').keys()].sort()).toEqual(['127.0.0.3', '127.0.0.4']);
  }, 60_000);

  it('a logger given to createMesh gets a kubernetes.watch warning when a collection is forbidden', async () => {
    cluster.api.forbid('virtualservices');
    const warnings: Record<string, unknown>[] = [];
    const quiet = (): void => undefined;
    const logger = { debug: quiet, info: quiet, error: quiet, warn: (obj: Record<string, unknown>) => warnings.push(obj) };
    await start({}, { logger });
    await vi.waitFor(() => expect(warnings.some((w) => w.event === 'kubernetes.watch')).toBe(true), WAIT);
    const warning = warnings.find((w) => w.event === 'kubernetes.watch')!;
    expect(warning.collection).toMatch(/^networking\.istio\.io\/v1 VirtualService in /);
    expect(warning.error).toMatch(/403.*virtualservices\.networking\.istio\.io is forbidden/);
  });
});

function destinationRule(): FakeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: {
      host: 'reviews',
      subsets: [
        { name: 'v1', labels: { version: 'v1' } },
        { name: 'v2', labels: { version: 'v2' } },
      ],
    },
  };
}

function virtualService(route: unknown[]): FakeObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: { hosts: ['reviews'], http: [{ route }] },
  };
}

function split(v1: number, v2: number): unknown[] {
  return [
    { destination: { host: 'reviews', subset: 'v1' }, weight: v1 },
    { destination: { host: 'reviews', subset: 'v2' }, weight: v2 },
  ];
}

function share(counts: Map<string, number>, pod: string): number {
  let total = 0;
  for (const n of counts.values()) total += n;
  expect(total).toBeGreaterThanOrEqual(400);
  return (counts.get(pod) ?? 0) / total;
}
