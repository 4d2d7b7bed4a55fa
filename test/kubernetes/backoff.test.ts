import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import { KubernetesSource } from '../../src/kubernetes/kubernetes-source.js';
import { KubeApiWatcher } from '../../src/kubernetes/api-watcher.js';
import { POD_METADATA, SERVICES } from '../../src/kubernetes/types.js';
import { FakeKubeApi } from '../helpers/fake-kube-api.js';
import type { TestTimer } from '../helpers/test-clock.js';
import { TestClock } from '../helpers/test-clock.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// Back-off of the Kubernetes watches and of API discovery, on a clock the test moves: every
// assertion is on which requests reached the fake API server, and how many. `vi.waitFor` only
// waits for requests in flight to land (its timeout ends a hung test; nothing is timed).
const BACKOFF = { backoff: { initialMs: 500, maxMs: 30_000 } };
const WAIT = { timeout: 10_000, interval: 5 };

let api: FakeKubeApi;
let dir: string;
/** Back-off timers only: a watch's stalled-watch bound (over 5 minutes) is not one. */
const isBackoff = (timer: TestTimer): boolean => timer.delayMs < 300_000;

/** The test clock, counting the back-offs waiting and how far the next one is. */
class BackoffClock extends TestClock {
  get pending(): number {
    return this.waiting.filter(isBackoff).length;
  }

  untilNext(): number | undefined {
    const due = this.waiting.filter(isBackoff).map((t) => t.at);
    return due.length > 0 ? Math.max(0, Math.min(...due) - this.now()) : undefined;
  }
}

let clock: BackoffClock;
let watcher: KubeApiWatcher | undefined;
let source: KubernetesSource | undefined;

beforeEach(async () => {
  api = await FakeKubeApi.start();
  dir = await makeTempDir();
  clock = new BackoffClock();
});
afterEach(async () => {
  await source?.close();
  source = undefined;
  await watcher?.close();
  watcher = undefined;
  await api.close();
  await removeTempDir(dir);
});

async function connect(): Promise<KubeApiWatcher> {
  const kubeconfig = await api.writeKubeconfig(join(dir, 'kubeconfig'));
  watcher = await KubeApiWatcher.connect({ kubeconfig, ...BACKOFF }, { clock, random: seededRandom(5) });
  return watcher;
}

const requests = (test: (url: string) => boolean): number => api.requests.filter((r) => test(r.url)).length;
const watches = (plural: string): number => requests((url) => url.includes(`/${plural}?`) && url.includes('watch=1'));
const discoveries = (): number => requests((url) => url.startsWith('/apis/networking.istio.io'));

/** Lets both pending retries fail, `rounds` times: the back-off grows to seconds. */
async function failRounds(rounds: number, pending: number): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    clock.advance(60_000);
    await vi.waitFor(() => expect(clock.pending).toBe(pending), WAIT);
  }
}

describe('a watch the server closes', () => {
  it('is watched again at once, even when it brought nothing', async () => {
    const services = (await connect()).collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    const before = watches('services');
    api.dropWatches();
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    expect(watches('services')).toBe(before + 1);
    expect(clock.pending).toBe(0); // no pause on the way

    // An empty watch that lasted (its timeout, an idle collection) is watched again at once too.
    clock.advance(5_000);
    api.dropWatches();
    await vi.waitFor(() => expect(watches('services')).toBe(before + 2), WAIT);
    expect(clock.pending).toBe(0);
  });

  it('waits, as after a failure, only when a second one in a row closed at once with nothing', async () => {
    const services = (await connect()).collection(SERVICES, { namespace: 'shop' });
    await services.synced;
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    api.dropWatches();
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    const before = watches('services');
    api.dropWatches(); // again, no time passed: a server closing every watch is not hammered
    await vi.waitFor(() => expect(clock.pending).toBe(1), WAIT);
    expect(watches('services')).toBe(before);
    clock.advance(60_000);
    await vi.waitFor(() => expect(api.openWatches).toBe(1), WAIT);
    expect(watches('services')).toBe(before + 1);
  });
});

describe('back-off after an outage', () => {
  it('ends for every watch as soon as the API server answers one of them, and starts over', async () => {
    const w = await connect();
    const services = w.collection(SERVICES, { namespace: 'shop' });
    const pods = w.collection(POD_METADATA, { namespace: 'shop' });
    await Promise.all([services.synced, pods.synced]);
    await vi.waitFor(() => expect(api.openWatches).toBe(2), WAIT);

    api.setUnavailable(true); // drops the watches; every request gets 503
    await vi.waitFor(() => expect(clock.pending).toBe(2), WAIT);
    await failRounds(4, 2);

    api.setUnavailable(false);
    const [servicesBefore, podsBefore] = [watches('services'), watches('pods')];
    clock.advance(clock.untilNext()!); // the earlier of the two retries, and only it
    expect(clock.pending).toBe(1);
    // Its answer ends the other's wait: both watch again, without the clock moving on.
    await vi.waitFor(() => expect(api.openWatches).toBe(2), WAIT);
    expect(clock.pending).toBe(0);
    expect([watches('services') - servicesBefore, watches('pods') - podsBefore]).toEqual([1, 1]);

    // The back-off started over: after a new failure, the first (shortest) delay brings both back.
    api.setUnavailable(true);
    await vi.waitFor(() => expect(clock.pending).toBe(2), WAIT);
    api.setUnavailable(false);
    clock.advance(BACKOFF.backoff.initialMs);
    await vi.waitFor(() => expect(api.openWatches).toBe(2), WAIT);
    expect(clock.pending).toBe(0);
  });

  it('ends for API discovery as soon as a watch gets an answer', async () => {
    api.setUnavailable(true);
    const w = await connect();
    source = new KubernetesSource(w, { namespaces: ['shop'], backoffInitialMs: 500, backoffMaxMs: 30_000, clock, random: seededRandom(9) });
    await source.start(() => undefined); // the first discovery attempt failed: the source starts empty
    await vi.waitFor(() => expect(clock.pending).toBe(1), WAIT);
    await failRounds(4, 1); // discovery's back-off is now seconds long

    w.collection(SERVICES, { namespace: 'shop' }); // an endpoint watch, as the mesh opens one
    await vi.waitFor(() => expect(clock.pending).toBe(2), WAIT); // its first attempt failed too
    api.setUnavailable(false);
    const before = discoveries();
    clock.advance(clock.untilNext()!); // the watch's short retry; discovery's is far later
    expect(clock.pending).toBe(1);
    await vi.waitFor(() => expect(discoveries()).toBeGreaterThan(before), WAIT);
    expect(clock.pending).toBe(0); // its own retry was cancelled, not run
    await vi.waitFor(() => expect(source!.discoveryError).toBeUndefined(), WAIT);
  });
});
