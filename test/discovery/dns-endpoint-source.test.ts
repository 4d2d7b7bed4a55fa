import { createSocket } from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { DnsEndpointChange, DnsEndpointSourceEvents, DnsEndpointSourceOptions, DnsLookupFailure } from '../../src/discovery/dns/dns-endpoint-source.js';
import { DnsEndpointSource } from '../../src/discovery/dns/dns-endpoint-source.js';
import { DnsLookupError } from '../../src/discovery/dns/errors.js';
import { kubernetesSearchDomains } from '../../src/discovery/dns/resolv-conf.js';
import { serviceEntryDnsWatches } from '../../src/cluster/service-entry-dns.js';
import type { Endpoint } from '../../src/discovery/endpoint.js';
import type { DnsmasqRecords } from '../helpers/dnsmasq.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { requireSystemTools } from '../helpers/system-tools.js';
import { TestClock } from '../helpers/test-clock.js';

requireSystemTools('dnsmasq');

/** A namespace `shop` with a ClusterIP service, a headless one with three pods, and an external name. */
const CLUSTER: Readonly<Record<string, readonly string[]>> = {
  'reviews.shop.svc.cluster.local': ['10.96.0.20', 'fd00:96::20'],
  'ratings.shop.svc.cluster.local': ['10.1.0.11', '10.1.0.12', '10.1.0.13'],
  '10-1-0-11.ratings.shop.svc.cluster.local': ['10.1.0.11'],
  '10-1-0-12.ratings.shop.svc.cluster.local': ['10.1.0.12'],
  '10-1-0-13.ratings.shop.svc.cluster.local': ['10.1.0.13'],
  'details.other.svc.cluster.local': ['10.96.0.30'],
  'api.example.test': ['192.0.2.10', '192.0.2.11'],
  'us.example.test': ['192.0.2.21'],
  'uk.example.test': ['192.0.2.31', '192.0.2.32'],
};

const RECORDS: DnsmasqRecords = {
  hosts: CLUSTER,
  srv: [
    // Headless: one record per ready pod, targets named after the pod IP.
    { name: '_http._tcp.ratings.shop.svc.cluster.local', target: '10-1-0-11.ratings.shop.svc.cluster.local', port: 9080, weight: 33 },
    { name: '_http._tcp.ratings.shop.svc.cluster.local', target: '10-1-0-12.ratings.shop.svc.cluster.local', port: 9080, weight: 33 },
    { name: '_http._tcp.ratings.shop.svc.cluster.local', target: '10-1-0-13.ratings.shop.svc.cluster.local', port: 9080, weight: 33 },
    // ClusterIP: one record, the service name itself.
    { name: '_http._tcp.reviews.shop.svc.cluster.local', target: 'reviews.shop.svc.cluster.local', port: 9080, weight: 100 },
  ],
};

function keys(endpoints: readonly Endpoint[] | undefined): string[] | undefined {
  return endpoints?.map((e) => e.key);
}

/** The next event of `name` that satisfies `predicate`; generous timeout, no timing assertions. */
function nextEvent<E extends keyof DnsEndpointSourceEvents>(
  source: DnsEndpointSource,
  name: E,
  predicate: (...args: DnsEndpointSourceEvents[E]) => boolean = () => true,
  timeoutMs = 15_000,
): Promise<DnsEndpointSourceEvents[E][0]> {
  return new Promise((resolve, reject) => {
    const listener = (...args: DnsEndpointSourceEvents[E]): void => {
      if (!predicate(...args)) return;
      clearTimeout(timer);
      source.off(name, listener as never);
      resolve(args[0]);
    };
    const timer = setTimeout(() => {
      source.off(name, listener as never);
      reject(new Error(`no matching ${String(name)} event within ${timeoutMs} ms`));
    }, timeoutMs);
    source.on(name, listener as never);
  });
}

describe('DnsEndpointSource against dnsmasq', () => {
  let dns: Dnsmasq;
  const sources: DnsEndpointSource[] = [];

  function makeSource(server: Dnsmasq, options: DnsEndpointSourceOptions = {}): DnsEndpointSource {
    const source = new DnsEndpointSource({
      resolvConfPath: '/nonexistent/resolv.conf',
      nameservers: [server.server],
      search: kubernetesSearchDomains('shop'),
      ndots: 5,
      timeoutMs: 1000,
      attempts: 2,
      ...options,
    });
    sources.push(source);
    return source;
  }

  beforeAll(async () => {
    dns = await Dnsmasq.start(RECORDS, { ttl: 1 });
  });

  afterEach(() => {
    for (const s of sources.splice(0)) s.close();
  });

  afterAll(async () => {
    await dns?.close();
  });

  it('finds a ClusterIP service by its short name through the search list', async () => {
    const source = makeSource(dns);
    const key = source.watch({ name: 'reviews', port: 9080 });
    const endpoints = await source.ready(key);
    expect(endpoints).toEqual([
      {
        key: '10.96.0.20:9080',
        address: '10.96.0.20',
        port: 9080,
        weight: 1,
        labels: {},
        locality: { region: '', zone: '', subZone: '' },
        ready: true,
      },
    ]);
    expect(source.status(key)).toMatchObject({ fqdn: 'reviews.shop.svc.cluster.local', consecutiveFailures: 0 });
    expect(source.resolvConf).toMatchObject({ nameservers: [dns.server], ndots: 5 });
  });

  it('finds other namespaces and fully qualified names', async () => {
    const source = makeSource(dns);
    const details = source.watch({ name: 'details.other', port: 9080 });
    expect(keys(await source.ready(details))).toEqual(['10.96.0.30:9080']);
    expect(source.status(details)?.fqdn).toBe('details.other.svc.cluster.local');
    const fqdn = source.watch({ name: 'ratings.shop.svc.cluster.local.', port: 80 });
    expect(keys(await source.ready(fqdn))).toEqual(['10.1.0.11:80', '10.1.0.12:80', '10.1.0.13:80']);
  });

  it('gives one endpoint per ready pod of a headless service', async () => {
    const source = makeSource(dns);
    const key = source.watch({ name: 'ratings', port: 9080 });
    expect(keys(await source.ready(key))).toEqual(['10.1.0.11:9080', '10.1.0.12:9080', '10.1.0.13:9080']);
  });

  it('answers AAAA for family ipv6, and A and AAAA for both', async () => {
    const v6 = makeSource(dns, { family: 'ipv6' });
    const k6 = v6.watch({ name: 'reviews', port: 9080 });
    expect(keys(await v6.ready(k6))).toEqual(['fd00:96::20:9080']);
    const both = makeSource(dns, { family: 'both' });
    const kb = both.watch({ name: 'reviews', port: 9080 });
    expect((await both.ready(kb)).map((e) => e.address)).toEqual(['10.96.0.20', 'fd00:96::20']);
    // A headless service without AAAA records still answers over A.
    const kr = both.watch({ name: 'ratings', port: 9080 });
    expect(await both.ready(kr)).toHaveLength(3);
  });

  it('resolves a named port through SRV: pod targets for headless, the service for ClusterIP', async () => {
    const source = makeSource(dns);
    const headless = source.watch({ name: 'ratings', portName: 'http' });
    const pods = await source.ready(headless);
    // CoreDNS's equal weights (100/n) are relative: each pod weighs 1, as an A answer's pods do.
    expect(pods.map((e) => [e.key, e.weight])).toEqual([
      ['10.1.0.11:9080', 1],
      ['10.1.0.12:9080', 1],
      ['10.1.0.13:9080', 1],
    ]);
    expect(source.status(headless)?.fqdn).toBe('_http._tcp.ratings.shop.svc.cluster.local');
    const clusterIp = source.watch({ name: 'reviews', portName: 'http' });
    expect(keys(await source.ready(clusterIp))).toEqual(['10.96.0.20:9080']);
    // No such named port: falls back to the address records with the given port.
    const fallback = source.watch({ name: 'reviews', portName: 'grpc', port: 9090 });
    expect(keys(await source.ready(fallback))).toEqual(['10.96.0.20:9090']);
  });

  it('resolves ServiceEntry resolution DNS and DNS_ROUND_ROBIN endpoints', async () => {
    const mesh = await meshFromYaml(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: external-api, namespace: shop }
spec:
  hosts: [api.example.test]
  location: MESH_EXTERNAL
  ports: [{ number: 443, name: https, protocol: TLS }]
  resolution: DNS
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: regional, namespace: shop }
spec:
  hosts: [foo.example.test]
  location: MESH_EXTERNAL
  ports: [{ number: 80, name: http, protocol: HTTP }]
  resolution: DNS
  endpoints:
  - { address: us.example.test, ports: { http: 8080 }, labels: { region: us }, locality: us-east1/a, weight: 3 }
  - { address: uk.example.test, ports: { http: 9080 }, labels: { region: uk } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: round-robin, namespace: shop }
spec:
  hosts: [api.example.test.rr]
  location: MESH_EXTERNAL
  ports: [{ number: 443, name: https, protocol: TLS }]
  resolution: DNS_ROUND_ROBIN
  endpoints: [{ address: api.example.test }]
`,
      { namespace: 'shop' },
    );
    try {
      const source = makeSource(dns);
      const endpointsOf = async (host: string, portNumber: number): Promise<Endpoint[]> => {
        const service = mesh.snapshot.service(host);
        const port = service?.ports.find((p) => p.number === portNumber);
        if (!service || !port) throw new Error(`no ${host}:${portNumber}`);
        const watchKeys = serviceEntryDnsWatches(service, port, mesh.snapshot.clusterDomain).map((spec) => source.watch(spec));
        return (await Promise.all(watchKeys.map((k) => source.ready(k)))).flat();
      };

      // No endpoints: the host itself is resolved, every address used.
      expect(keys(await endpointsOf('api.example.test', 443))).toEqual(['192.0.2.10:443', '192.0.2.11:443']);

      const regional = await endpointsOf('foo.example.test', 80);
      expect(regional.map((e) => [e.key, e.weight, e.labels.region, e.locality.zone])).toEqual([
        ['192.0.2.21:8080', 3, 'us', 'a'],
        ['192.0.2.31:9080', 1, 'uk', ''],
        ['192.0.2.32:9080', 1, 'uk', ''],
      ]);

      // DNS_ROUND_ROBIN: one logical endpoint at the first address of the answer.
      const logical = await endpointsOf('api.example.test.rr', 443);
      expect(logical).toHaveLength(1);
      expect(logical[0]?.key).toBe('api.example.test:443');
      expect(['192.0.2.10', '192.0.2.11']).toContain(logical[0]?.address);
    } finally {
      await mesh.close();
    }
  });

  describe('with records that change', () => {
    let own: Dnsmasq | undefined;
    afterEach(async () => {
      for (const s of sources.splice(0)) s.close();
      await own?.close();
      own = undefined;
    });

    it('picks up a changed record when the TTL runs out', async () => {
      own = await Dnsmasq.start(RECORDS, { ttl: 1 });
      const clock = new TestClock();
      const source = makeSource(own, { clock });
      const key = source.watch({ name: 'ratings', port: 9080 });
      expect(await source.ready(key)).toHaveLength(3);

      const changed = nextEvent(source, 'change', (c) => c.key === key);
      await own.setHosts({ ...CLUSTER, 'ratings.shop.svc.cluster.local': ['10.1.0.11', '10.1.0.14'] });
      expect(source.current(key)).toHaveLength(3);
      // The TTL (1 s) runs out.
      expect(clock.advance(1_000)).toHaveLength(1);
      const change: DnsEndpointChange = await changed;
      expect(keys(change.endpoints)).toEqual(['10.1.0.11:9080', '10.1.0.14:9080']);
      expect(keys(change.previous)).toEqual(['10.1.0.11:9080', '10.1.0.12:9080', '10.1.0.13:9080']);
      expect(keys(source.current(key))).toEqual(['10.1.0.11:9080', '10.1.0.14:9080']);
    });

    it('removes the endpoints when the name is gone (NXDOMAIN)', async () => {
      own = await Dnsmasq.start(RECORDS, { ttl: 1 });
      const clock = new TestClock();
      const source = makeSource(own, { clock });
      const key = source.watch({ name: 'ratings', port: 9080 });
      expect(await source.ready(key)).toHaveLength(3);
      const failures: DnsLookupFailure[] = [];
      source.on('lookupFailed', (f) => failures.push(f));

      const emptied = nextEvent(source, 'change', (c) => c.key === key && c.endpoints.length === 0);
      const { 'ratings.shop.svc.cluster.local': _gone, ...rest } = CLUSTER;
      await own.setHosts(rest);
      expect(clock.advance(1_000)).toHaveLength(1);
      const change = await emptied;
      expect(change.fqdn).toBeUndefined();
      expect(source.current(key)).toEqual([]);
      // An authoritative "no such name" is an answer, not a failure.
      expect(failures).toEqual([]);
    });

    it('keeps the last good endpoints while the server is down, reports it, and recovers', async () => {
      own = await Dnsmasq.start(RECORDS, { ttl: 1 });
      const clock = new TestClock();
      const source = makeSource(own, { failureRefreshMs: 200, maxFailureRefreshMs: 1000, timeoutMs: 500, attempts: 1, clock });
      const key = source.watch({ name: 'ratings', port: 9080 });
      const good = await source.ready(key);
      expect(good).toHaveLength(3);

      const failed = nextEvent(source, 'lookupFailed', (f) => f.key === key);
      await own.stop();
      expect(clock.advance(1_000)).toHaveLength(1);
      const failure = await failed;
      expect(failure.error).toBeInstanceOf(DnsLookupError);
      expect(['ECONNREFUSED', 'ETIMEOUT']).toContain(failure.error.dnsCode);
      expect(failure.error.hostname).toBe('ratings.shop.svc.cluster.local');
      expect(failure.kept).toBe(good);
      expect(source.current(key)).toBe(good);
      expect(await source.ready(key)).toBe(good);
      expect(source.status(key)?.lastError?.dnsCode).toBe(failure.error.dnsCode);

      // Back up with a changed answer: the next retry picks it up.
      await own.setHosts({ ...CLUSTER, 'ratings.shop.svc.cluster.local': ['10.1.0.15'] });
      const recovered = nextEvent(source, 'change', (c) => c.key === key);
      await own.restart();
      // The retry after the first failure.
      expect(clock.waiting.map((t) => t.delayMs)).toEqual([200]);
      expect(clock.advance(200)).toHaveLength(1);
      expect(keys((await recovered).endpoints)).toEqual(['10.1.0.15:9080']);
      expect(source.status(key)?.consecutiveFailures).toBe(0);
    });

    it('picks up changed SRV records', async () => {
      own = await Dnsmasq.start(RECORDS, { ttl: 1 });
      const clock = new TestClock();
      const source = makeSource(own, { clock });
      const key = source.watch({ name: 'ratings', portName: 'http' });
      expect(await source.ready(key)).toHaveLength(3);
      const changed = nextEvent(source, 'change', (c) => c.key === key);
      await own.setSrv([{ name: '_http._tcp.ratings.shop.svc.cluster.local', target: '10-1-0-12.ratings.shop.svc.cluster.local', port: 8080 }]);
      // The refresh the SRV answer asked for.
      expect(clock.runNext()).toBeDefined();
      // Weight 0 in SRV becomes the smallest positive weight.
      expect((await changed).endpoints.map((e) => [e.key, e.weight])).toEqual([['10.1.0.12:8080', 1]]);
    });
  });

  it('close() cancels queries in flight and leaves no timers or sockets behind', async () => {
    // A server that never answers keeps the first lookup in flight.
    const blackHole = createSocket('udp4');
    blackHole.on('message', () => undefined);
    await new Promise<void>((resolve) => blackHole.bind(0, '127.0.0.1', resolve));

    const clock = new TestClock();
    const stuck = new DnsEndpointSource({
      resolvConfPath: '/nonexistent/resolv.conf',
      nameservers: [`127.0.0.1:${blackHole.address().port}`],
      search: [],
      timeoutMs: 5000,
      attempts: 3,
      clock,
    });
    const live = makeSource(dns, { clock });
    const liveKey = live.watch({ name: 'reviews', port: 9080 });
    await live.ready(liveKey);
    expect(clock.waiting).toHaveLength(1);
    live.close();
    expect(clock.waiting).toHaveLength(0);

    const key = stuck.watch({ name: 'reviews.shop.svc.cluster.local', port: 9080 });
    const ready = stuck.ready(key);
    stuck.close();
    await expect(ready).rejects.toMatchObject({ dnsCode: 'ECANCELLED' });
    expect(clock.waiting).toHaveLength(0);
    await new Promise<void>((resolve) => blackHole.close(() => resolve()));
    // Handles close asynchronously: wait for the last UDP socket (ours and c-ares's) to go.
    await vi.waitFor(() => expect(process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap')).toEqual([]), {
      timeout: 5000,
    });
  });
});
