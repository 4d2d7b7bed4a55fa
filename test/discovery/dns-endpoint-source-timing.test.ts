import { afterEach, describe, expect, it } from 'vitest';
import type { DnsEndpointChange, DnsEndpointSourceOptions, DnsLookupFailure } from '../../src/discovery/dns/dns-endpoint-source.js';
import { DnsEndpointSource } from '../../src/discovery/dns/dns-endpoint-source.js';
import type { DnsAddress, DnsAnswer, DnsQuerier, DnsSrvRecord } from '../../src/discovery/dns/dns-resolver.js';
import { DnsLookupError } from '../../src/discovery/dns/errors.js';
import { TestClock } from '../helpers/test-clock.js';

/** Scripted answers: what a name answers is set per record type; unknown names are NXDOMAIN. */
class FakeQuerier implements DnsQuerier {
  readonly a = new Map<string, DnsAnswer<DnsAddress> | string>();
  readonly aaaa = new Map<string, DnsAnswer<DnsAddress> | string>();
  readonly srv = new Map<string, DnsAnswer<DnsSrvRecord> | string>();
  readonly queries: string[] = [];
  cancelled = 0;

  async queryAddresses(name: string, family: 4 | 6): Promise<DnsAnswer<DnsAddress>> {
    const rrtype = family === 4 ? 'A' : 'AAAA';
    this.queries.push(`${rrtype} ${name}`);
    return answer((family === 4 ? this.a : this.aaaa).get(name), name, rrtype);
  }

  async querySrv(name: string): Promise<DnsAnswer<DnsSrvRecord>> {
    this.queries.push(`SRV ${name}`);
    return answer(this.srv.get(name), name, 'SRV');
  }

  cancel(): void {
    this.cancelled++;
  }
}

function answer<T>(value: DnsAnswer<T> | string | undefined, name: string, rrtype: 'A' | 'AAAA' | 'SRV'): DnsAnswer<T> {
  if (typeof value === 'string') throw new DnsLookupError(name, rrtype, value);
  return value ?? { status: 'nxdomain' };
}

function v4(ttl: number, ...addresses: string[]): DnsAnswer<DnsAddress> {
  return { status: 'found', records: addresses.map((address) => ({ address, family: 4, ttl })) };
}

function v6(ttl: number, ...addresses: string[]): DnsAnswer<DnsAddress> {
  return { status: 'found', records: addresses.map((address) => ({ address, family: 6, ttl })) };
}

/** Delays of the refreshes waiting on the clock. */
function pendingDelays(clock: TestClock): number[] {
  return clock.waiting.map((t) => t.delayMs);
}

describe('DnsEndpointSource (scripted answers)', () => {
  let source: DnsEndpointSource | undefined;
  afterEach(() => {
    source?.close();
    source = undefined;
  });

  function setup(options: DnsEndpointSourceOptions = {}) {
    const querier = new FakeQuerier();
    const clock = new TestClock();
    const changes: DnsEndpointChange[] = [];
    const failures: DnsLookupFailure[] = [];
    const s = new DnsEndpointSource({
      nameservers: ['127.0.0.1:1'],
      search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      ndots: 5,
      querier,
      clock,
      ...options,
    });
    s.on('change', (c) => changes.push(c));
    s.on('lookupFailed', (f) => failures.push(f));
    source = s;
    /** Moves the clock to the scheduled refresh of `key` (running it) and waits for it. */
    const tick = async (key: string): Promise<void> => {
      clock.runNext();
      await s.refresh(key);
    };
    return { source: s, querier, clock, changes, failures, tick };
  }

  it('refreshes at the TTL, clamped to the floor and cap, and at the default rate for TTL 0', async () => {
    const { source, querier, clock, tick } = setup({ minRefreshMs: 2000, maxRefreshMs: 60_000, defaultRefreshMs: 15_000 });
    querier.a.set('reviews.shop.svc.cluster.local', v4(7, '10.0.0.1'));
    const key = source.watch({ name: 'reviews', port: 9080 });
    expect(await source.ready(key)).toHaveLength(1);
    expect(pendingDelays(clock)).toEqual([7000]);

    querier.a.set('reviews.shop.svc.cluster.local', v4(1, '10.0.0.1'));
    await tick(key);
    expect(pendingDelays(clock)).toEqual([2000]);

    querier.a.set('reviews.shop.svc.cluster.local', v4(86_400, '10.0.0.1'));
    await tick(key);
    expect(pendingDelays(clock)).toEqual([60_000]);

    querier.a.set('reviews.shop.svc.cluster.local', v4(0, '10.0.0.1'));
    await tick(key);
    expect(pendingDelays(clock)).toEqual([15_000]);

    // The smallest TTL of the answer counts.
    querier.a.set('reviews.shop.svc.cluster.local', {
      status: 'found',
      records: [
        { address: '10.0.0.1', family: 4, ttl: 30 },
        { address: '10.0.0.2', family: 4, ttl: 5 },
      ],
    });
    await tick(key);
    expect(pendingDelays(clock)).toEqual([5000]);
    expect(source.status(key)).toMatchObject({ fqdn: 'reviews.shop.svc.cluster.local', answeredAt: clock.now(), nextLookupAt: clock.now() + 5000 });
  });

  it('emits a change only when the set changes, not when the answer is reordered', async () => {
    const { source, querier, changes, tick } = setup();
    querier.a.set('reviews.shop.svc.cluster.local', v4(5, '10.0.0.2', '10.0.0.1'));
    const key = source.watch({ name: 'reviews', port: 9080 });
    await source.ready(key);
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ key, name: 'reviews', fqdn: 'reviews.shop.svc.cluster.local', previous: [] });
    expect(changes[0]?.endpoints.map((e) => e.key)).toEqual(['10.0.0.1:9080', '10.0.0.2:9080']);

    querier.a.set('reviews.shop.svc.cluster.local', v4(5, '10.0.0.1', '10.0.0.2'));
    await tick(key);
    expect(changes).toHaveLength(1);

    querier.a.set('reviews.shop.svc.cluster.local', v4(5, '10.0.0.3', '10.0.0.1'));
    await tick(key);
    expect(changes).toHaveLength(2);
    expect(changes[1]?.previous.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(source.current(key)?.map((e) => e.address)).toEqual(['10.0.0.1', '10.0.0.3']);
  });

  it('keeps the last good endpoints on failure, retries with backoff, and resets on success', async () => {
    const { source, querier, clock, changes, failures, tick } = setup({ failureRefreshMs: 500, maxFailureRefreshMs: 3000 });
    const name = 'reviews.shop.svc.cluster.local';
    querier.a.set(name, v4(5, '10.0.0.1'));
    const key = source.watch({ name: 'reviews', port: 9080 });
    const good = await source.ready(key);

    querier.a.set(name, 'ESERVFAIL');
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      await tick(key);
      delays.push(...pendingDelays(clock));
    }
    expect(delays).toEqual([500, 1000, 2000, 3000, 3000]);
    expect(source.current(key)).toBe(good);
    expect(failures).toHaveLength(5);
    expect(failures[0]).toMatchObject({ key, name: 'reviews', kept: good, consecutiveFailures: 1, retryInMs: 500 });
    expect(failures[0]?.error).toBeInstanceOf(DnsLookupError);
    expect(failures[0]?.error).toMatchObject({ code: 'ERR_MESH_DNS_LOOKUP', dnsCode: 'ESERVFAIL', hostname: name, rrtype: 'A' });
    expect(source.status(key)).toMatchObject({ consecutiveFailures: 5, lastError: { dnsCode: 'ESERVFAIL' } });
    expect(changes).toHaveLength(1);

    querier.a.set(name, v4(5, '10.0.0.1'));
    await tick(key);
    expect(pendingDelays(clock)).toEqual([5000]);
    expect(source.status(key)).toMatchObject({ consecutiveFailures: 0, lastError: undefined });
    expect(changes).toHaveLength(1);
  });

  it('empties the set on NXDOMAIN and NODATA, and looks again at the default rate', async () => {
    const { source, querier, clock, changes, tick } = setup({ defaultRefreshMs: 10_000 });
    const name = 'reviews.shop.svc.cluster.local';
    querier.a.set(name, v4(5, '10.0.0.1'));
    const key = source.watch({ name: 'reviews', port: 9080 });
    await source.ready(key);

    querier.a.delete(name);
    await tick(key);
    expect(source.current(key)).toEqual([]);
    expect(changes.at(-1)).toMatchObject({ endpoints: [], fqdn: undefined });
    expect(pendingDelays(clock)).toEqual([10_000]);

    querier.a.set(name, { status: 'nodata' });
    await tick(key);
    expect(changes).toHaveLength(2);
  });

  it('rejects ready() while there has never been an answer, and resolves once there is one', async () => {
    const { source, querier, tick } = setup();
    querier.a.set('reviews.shop.svc.cluster.local', 'ETIMEOUT');
    const key = source.watch({ name: 'reviews', port: 9080 });
    await expect(source.ready(key)).rejects.toMatchObject({ dnsCode: 'ETIMEOUT' });
    expect(source.current(key)).toBeUndefined();
    querier.a.set('reviews.shop.svc.cluster.local', v4(5, '10.0.0.1'));
    await tick(key);
    expect((await source.ready(key)).map((e) => e.key)).toEqual(['10.0.0.1:9080']);
    await expect(source.ready('nope')).rejects.toThrow(/not watched/);
  });

  it('walks the search list past NXDOMAIN and NODATA, but stops at a failed query', async () => {
    const { source, querier, failures } = setup();
    querier.a.set('reviews.shop.svc.cluster.local', { status: 'nodata' });
    querier.a.set('reviews.cluster.local', v4(5, '10.0.0.9'));
    const key = source.watch({ name: 'reviews', port: 80 });
    expect((await source.ready(key)).map((e) => e.address)).toEqual(['10.0.0.9']);
    expect(querier.queries).toEqual(['A reviews.shop.svc.cluster.local', 'A reviews.svc.cluster.local', 'A reviews.cluster.local']);

    querier.a.set('reviews.shop.svc.cluster.local', 'ESERVFAIL');
    await source.refresh(key);
    expect(querier.queries.slice(3)).toEqual(['A reviews.shop.svc.cluster.local']);
    expect(failures).toHaveLength(1);
    expect(source.current(key)?.map((e) => e.address)).toEqual(['10.0.0.9']);
  });

  it('asks for AAAA with family ipv6, and for both (IPv4 first) with family both', async () => {
    const { source, querier } = setup({ family: 'both' });
    querier.a.set('reviews.shop.svc.cluster.local', v4(5, '10.0.0.1'));
    querier.aaaa.set('reviews.shop.svc.cluster.local', v6(5, 'fd00::1'));
    querier.aaaa.set('ratings.shop.svc.cluster.local', v6(5, 'fd00::2'));
    const key = source.watch({ name: 'reviews', port: 9080 });
    expect((await source.ready(key)).map((e) => e.key)).toEqual(['10.0.0.1:9080', 'fd00::1:9080']);
    // NODATA for A does not hide the AAAA records.
    const ratings = source.watch({ name: 'ratings', port: 9080 });
    expect((await source.ready(ratings)).map((e) => e.address)).toEqual(['fd00::2']);

    const v6only = setup({ family: 'ipv6' });
    v6only.querier.aaaa.set('reviews.shop.svc.cluster.local', v6(5, 'fd00::1'));
    const k = v6only.source.watch({ name: 'reviews', port: 9080 });
    expect((await v6only.source.ready(k)).map((e) => e.address)).toEqual(['fd00::1']);
    expect(v6only.querier.queries).toEqual(['AAAA reviews.shop.svc.cluster.local']);
    v6only.source.close();
  });

  it('uses SRV ports and targets, the lowest priority only, and falls back to the port without SRV', async () => {
    const { source, querier } = setup();
    querier.srv.set('_http._tcp.reviews.shop.svc.cluster.local', {
      status: 'found',
      records: [
        { name: 'reviews-0.reviews.shop.svc.cluster.local', port: 9080, priority: 0, weight: 30 },
        { name: 'reviews-1.reviews.shop.svc.cluster.local', port: 9081, priority: 0, weight: 0 },
        { name: 'backup.reviews.shop.svc.cluster.local', port: 9080, priority: 10, weight: 50 },
      ],
    });
    querier.a.set('reviews-0.reviews.shop.svc.cluster.local', v4(5, '10.1.0.1'));
    querier.a.set('reviews-1.reviews.shop.svc.cluster.local', v4(5, '10.1.0.2'));
    querier.a.set('backup.reviews.shop.svc.cluster.local', v4(5, '10.1.0.3'));
    const key = source.watch({ name: 'reviews', portName: 'http', template: { labels: { app: 'reviews' } } });
    const endpoints = await source.ready(key);
    expect(endpoints.map((e) => [e.key, e.weight])).toEqual([
      ['10.1.0.1:9080', 30],
      ['10.1.0.2:9081', 1],
    ]);
    expect(endpoints[0]?.labels).toEqual({ app: 'reviews' });
    expect(source.status(key)?.fqdn).toBe('_http._tcp.reviews.shop.svc.cluster.local');

    querier.a.set('ratings.shop.svc.cluster.local', v4(5, '10.2.0.1'));
    const ratings = source.watch({ name: 'ratings', portName: 'grpc', port: 9090 });
    expect((await source.ready(ratings)).map((e) => e.key)).toEqual(['10.2.0.1:9090']);
    const none = source.watch({ name: 'ratings', portName: 'grpc' });
    expect(await source.ready(none)).toEqual([]);
    expect(() => source.watch({ name: 'ratings' })).toThrow(/port/);
  });

  it('reduces SRV weights to their ratio and multiplies them by the template weight', async () => {
    const { source, querier } = setup();
    const srv = (weights: number[]): DnsAnswer<DnsSrvRecord> => ({
      status: 'found',
      records: weights.map((weight, i) => ({ name: `pod-${i}.ratings.shop.svc.cluster.local`, port: 8080, priority: 0, weight })),
    });
    for (let i = 0; i < 3; i++) querier.a.set(`pod-${i}.ratings.shop.svc.cluster.local`, v4(5, `10.1.0.${i + 1}`));
    const weightsOf = async (weights: number[], templateWeight?: number): Promise<number[]> => {
      querier.srv.set('_http._tcp.ratings.shop.svc.cluster.local', srv(weights));
      const key = source.watch({
        key: `w${weights.join('-')}-${templateWeight ?? ''}`,
        name: 'ratings',
        portName: 'http',
        ...(templateWeight !== undefined ? { template: { weight: templateWeight } } : {}),
      });
      return (await source.ready(key)).map((e) => e.weight);
    };
    // Kubernetes DNS (CoreDNS) publishes floor(100/n) for each of n pods: equal, so 1 each.
    expect(await weightsOf([33, 33, 33])).toEqual([1, 1, 1]);
    expect(await weightsOf([10, 90, 30])).toEqual([1, 9, 3]);
    // Weight 0 is the smallest share RFC 2782 allows: 1.
    expect(await weightsOf([0, 50])).toEqual([1, 50]);
    // A ServiceEntry endpoint's weight applies to every address, as with A answers.
    expect(await weightsOf([25, 25, 50], 3)).toEqual([3, 3, 6]);
  });

  it('uses a higher SRV priority only while no target of the lower ones has an address', async () => {
    const { source, querier, tick } = setup();
    querier.srv.set('_grpc._tcp.ratings.shop.svc.cluster.local', {
      status: 'found',
      records: [
        { name: 'gone.ratings.shop.svc.cluster.local', port: 7000, priority: 1, weight: 1 },
        { name: 'backup.ratings.shop.svc.cluster.local', port: 7001, priority: 5, weight: 1 },
        { name: 'last.ratings.shop.svc.cluster.local', port: 7002, priority: 9, weight: 1 },
      ],
    });
    querier.a.set('backup.ratings.shop.svc.cluster.local', v4(5, '10.1.0.8'));
    querier.a.set('last.ratings.shop.svc.cluster.local', v4(5, '10.1.0.9'));
    const key = source.watch({ name: 'ratings', portName: 'grpc' });
    expect((await source.ready(key)).map((e) => e.key)).toEqual(['10.1.0.8:7001']);
    // The lower priority gets an address: it takes over, the backups leave.
    querier.a.set('gone.ratings.shop.svc.cluster.local', v4(5, '10.1.0.7'));
    await tick(key);
    expect(source.current(key)?.map((e) => e.key)).toEqual(['10.1.0.7:7000']);
    // Records whose targets have no address at all: the name exists, with no endpoints.
    for (const n of ['gone', 'backup', 'last']) querier.a.delete(`${n}.ratings.shop.svc.cluster.local`);
    await tick(key);
    expect(source.current(key)).toEqual([]);
    expect(source.status(key)?.fqdn).toBe('_grpc._tcp.ratings.shop.svc.cluster.local');
  });

  it("refreshes an SRV answer on its targets' TTL, never later than the default rate (Node does not report SRV TTLs)", async () => {
    const { source, querier, clock, tick } = setup({ defaultRefreshMs: 20_000 });
    querier.srv.set('_http._tcp.ratings.shop.svc.cluster.local', {
      status: 'found',
      records: [{ name: 'pod.ratings.shop.svc.cluster.local', port: 8080, priority: 0, weight: 1 }],
    });
    querier.a.set('pod.ratings.shop.svc.cluster.local', v4(5, '10.1.0.1'));
    const key = source.watch({ name: 'ratings', portName: 'http' });
    await source.ready(key);
    expect(pendingDelays(clock)).toEqual([5000]);
    querier.a.set('pod.ratings.shop.svc.cluster.local', v4(3600, '10.1.0.1'));
    await tick(key);
    expect(pendingDelays(clock)).toEqual([20_000]);
    // Address answers keep their own TTL.
    querier.a.set('other.shop.svc.cluster.local', v4(3600, '10.1.0.2'));
    const plain = source.watch({ name: 'other', port: 80 });
    await source.ready(plain);
    expect(pendingDelays(clock)).toContain(300_000);
  });

  it('fails an SRV lookup whose target query fails, keeping the last good endpoints', async () => {
    const { source, querier, tick, failures } = setup();
    querier.srv.set('_http._tcp.ratings.shop.svc.cluster.local', {
      status: 'found',
      records: [{ name: 'pod.ratings.shop.svc.cluster.local', port: 8080, priority: 0, weight: 1 }],
    });
    querier.a.set('pod.ratings.shop.svc.cluster.local', v4(5, '10.1.0.1'));
    const key = source.watch({ name: 'ratings', portName: 'http', port: 9080 });
    expect((await source.ready(key)).map((e) => e.key)).toEqual(['10.1.0.1:8080']);
    querier.a.set('pod.ratings.shop.svc.cluster.local', 'ESERVFAIL');
    await tick(key);
    expect(source.current(key)?.map((e) => e.key)).toEqual(['10.1.0.1:8080']);
    querier.srv.set('_http._tcp.ratings.shop.svc.cluster.local', 'ETIMEOUT');
    await tick(key);
    expect(source.current(key)?.map((e) => e.key)).toEqual(['10.1.0.1:8080']);
    expect(failures.map((f) => f.error.message)).toEqual([
      'DNS A query for pod.ratings.shop.svc.cluster.local failed: ESERVFAIL',
      'DNS SRV query for _http._tcp.ratings.shop.svc.cluster.local failed: ETIMEOUT',
    ]);
  });

  it('logical mode (DNS_ROUND_ROBIN) keeps one endpoint per port at the first address, under a stable key', async () => {
    const { source, querier, clock, changes, tick } = setup();
    const name = 'api.example.com';
    querier.a.set(name, {
      status: 'found',
      records: [
        { address: '192.0.2.1', family: 4, ttl: 20 },
        { address: '192.0.2.2', family: 4, ttl: 3 },
      ],
    });
    const key = source.watch({ name: 'api.example.com.', port: 443, mode: 'logical', template: { weight: 2 } });
    expect(await source.ready(key)).toEqual([expect.objectContaining({ key: 'api.example.com:443', address: '192.0.2.1', port: 443, weight: 2 })]);
    // Envoy refreshes a logical DNS cluster on the TTL of the first record.
    expect(pendingDelays(clock)).toEqual([20_000]);

    querier.a.set(name, v4(20, '192.0.2.2', '192.0.2.1'));
    await tick(key);
    expect(source.current(key)).toEqual([expect.objectContaining({ key: 'api.example.com:443', address: '192.0.2.2' })]);
    expect(changes).toHaveLength(2);

    // An empty answer never drains a logical host.
    querier.a.delete(name);
    await tick(key);
    expect(source.current(key)).toEqual([expect.objectContaining({ address: '192.0.2.2' })]);
    expect(changes).toHaveLength(2);
  });

  it('resolves IP literals without queries or refreshes', async () => {
    const { source, querier, clock } = setup();
    const key = source.watch({ name: '10.9.9.9', port: 80 });
    expect((await source.ready(key)).map((e) => e.key)).toEqual(['10.9.9.9:80']);
    const v6key = source.watch({ name: '[fd00::9]', port: 80 });
    expect((await source.ready(v6key)).map((e) => e.address)).toEqual(['fd00::9']);
    expect(querier.queries).toEqual([]);
    expect(pendingDelays(clock)).toEqual([]);
  });

  it('watch is idempotent per key; unwatch and close cancel refreshes and silence answers in flight', async () => {
    const { source, querier, clock, changes } = setup();
    querier.a.set('reviews.shop.svc.cluster.local', v4(5, '10.0.0.1'));
    const key = source.watch({ name: 'reviews', port: 9080 });
    expect(source.watch({ name: 'Reviews.', port: 9080 })).toBe(key);
    expect(source.keys()).toEqual([key]);
    await source.ready(key);
    expect(pendingDelays(clock)).toEqual([5000]);
    source.unwatch(key);
    expect(pendingDelays(clock)).toEqual([]);
    expect(source.current(key)).toBeUndefined();

    const other = source.watch({ name: 'reviews', port: 9081 });
    source.close();
    await Promise.resolve();
    expect(pendingDelays(clock)).toEqual([]);
    expect(source.current(other)).toBeUndefined();
    expect(changes).toHaveLength(1);
    // An injected querier belongs to the caller.
    expect(querier.cancelled).toBe(0);
    expect(() => source.watch({ name: 'reviews', port: 1 })).toThrow(/closed/);
  });
});
