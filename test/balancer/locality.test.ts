import { describe, expect, it } from 'vitest';
import { NO_PICK_CONTEXT } from '../../src/balancer/balancer.js';
import { parseLocality } from '../../src/discovery/endpoint.js';
import type { Host } from '../../src/balancer/host.js';
import { localityMatch, PriorityBalancer, type LocalityLbOptions } from '../../src/balancer/locality.js';
import { RandomBalancer } from '../../src/balancer/random.js';
import { RingHashBalancer } from '../../src/balancer/ring-hash.js';
import { host, nameOf, requestHashes, share, shares, testDeps } from './fixtures.js';

const client = parseLocality('region1/zone1');

/** Two hosts per locality: a* region1/zone1, b* region1/zone2, c* region2/zone3, d* region3/zone4. */
function fleet(): Host[] {
  return [
    host('a1', { locality: 'region1/zone1' }),
    host('a2', { locality: 'region1/zone1' }),
    host('b1', { locality: 'region1/zone2' }),
    host('b2', { locality: 'region1/zone2' }),
    host('c1', { locality: 'region2/zone3' }),
    host('c2', { locality: 'region2/zone3' }),
    host('d1', { locality: 'region3/zone4' }),
    host('d2', { locality: 'region3/zone4' }),
  ];
}

function balancer(locality: LocalityLbOptions, seed = 51): PriorityBalancer {
  return new PriorityBalancer(() => new RandomBalancer(testDeps(seed)), { locality }, testDeps(seed));
}

/** Share per locality prefix (`a`, `b`, `c`, `d`). */
function byLetter(lb: PriorityBalancer, picks = 10_000): Record<string, number> {
  const out: Record<string, number> = { a: 0, b: 0, c: 0, d: 0 };
  for (const [name, s] of shares(lb, picks)) out[name[0]!] = (out[name[0]!] ?? 0) + s;
  return out;
}

function unhealthy(hosts: Host[], ...names: string[]): void {
  for (const h of hosts) if (names.includes(h.endpoint.address)) h.healthy = false;
}

describe('localityMatch (Istio LocalityMatch)', () => {
  it('matches region/zone/subzone patterns with * and missing parts', () => {
    const l = parseLocality('us-west/zone1/rack2');
    expect(localityMatch(l, '*')).toBe(true);
    expect(localityMatch(l, 'us-west')).toBe(true);
    expect(localityMatch(l, 'us-west/*')).toBe(true);
    expect(localityMatch(l, 'us-west/zone1/*')).toBe(true);
    expect(localityMatch(l, 'us-west/zone1/rack2')).toBe(true);
    expect(localityMatch(l, 'us-west/zone2/*')).toBe(false);
    expect(localityMatch(l, 'us-east/*')).toBe(false);
    expect(localityMatch(l, '*/zone1')).toBe(true);
  });
});

describe('locality failover (priorities)', () => {
  const failover: LocalityLbOptions = { clientLocality: client, failoverEnabled: true };

  it('keeps all traffic in the client zone while it is healthy', () => {
    const lb = balancer(failover);
    lb.update(fleet());
    expect(byLetter(lb).a).toBe(1);
    expect(lb.describe().map((p) => p.hosts.length)).toEqual([2, 2, 4]);
  });

  it('spills 30% to the next priority when half the zone is unhealthy (50% x 1.4 = 70)', () => {
    const hosts = fleet();
    unhealthy(hosts, 'a1');
    const lb = balancer(failover);
    lb.update(hosts);
    const s = byLetter(lb, 20_000);
    expect(Math.abs(s.a! - 0.7)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(s.b! - 0.3)).toBeLessThanOrEqual(0.02);
  });

  it('fails over zone -> same region -> other regions', () => {
    const hosts = fleet();
    unhealthy(hosts, 'a1', 'a2');
    const lb = balancer(failover);
    lb.update(hosts);
    expect(byLetter(lb).b).toBe(1);
    unhealthy(hosts, 'b1', 'b2');
    lb.update(hosts);
    const s = byLetter(lb);
    expect(s.a! + s.b!).toBe(0);
    expect(Math.abs(s.c! - 0.5)).toBeLessThanOrEqual(0.03);
  });

  it('follows an explicit failover region (region1 -> region3) before any other region', () => {
    const hosts = fleet();
    unhealthy(hosts, 'a1', 'a2', 'b1', 'b2');
    const lb = balancer({ ...failover, failover: [{ from: 'region1', to: 'region3' }] });
    lb.update(hosts);
    const s = byLetter(lb);
    expect(s.d).toBe(1);
  });

  it('does nothing without outlier detection (failoverEnabled false) or when disabled', () => {
    for (const options of [{ clientLocality: client }, { ...failover, enabled: false }]) {
      const lb = balancer(options);
      lb.update(fleet());
      const s = byLetter(lb, 20_000);
      for (const letter of ['a', 'b', 'c', 'd']) expect(Math.abs(s[letter]! - 0.25)).toBeLessThanOrEqual(0.02);
    }
  });
});

describe('locality distribute (weights)', () => {
  it('splits 80/20 between zones as configured and excludes unlisted localities', () => {
    const lb = balancer({
      clientLocality: client,
      distribute: [{ from: 'region1/zone1/*', to: { 'region1/zone1/*': 80, 'region1/zone2/*': 20 } }],
    });
    lb.update(fleet());
    const s = byLetter(lb, 20_000);
    expect(Math.abs(s.a! - 0.8)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(s.b! - 0.2)).toBeLessThanOrEqual(0.02);
    expect(s.c! + s.d!).toBe(0);
  });

  it('uses the first rule whose from matches the client', () => {
    const lb = balancer({
      clientLocality: client,
      distribute: [
        { from: 'region2/*', to: { 'region2/*': 100 } },
        { from: 'region1/*', to: { 'region3/*': 100 } },
      ],
    });
    lb.update(fleet());
    expect(byLetter(lb).d).toBe(1);
  });

  it("splits a wildcard destination's weight across the localities it matches", () => {
    const lb = balancer({ clientLocality: client, distribute: [{ from: '*', to: { 'region1/*': 100 } }] });
    lb.update(fleet());
    const s = byLetter(lb, 20_000);
    expect(Math.abs(s.a! - 0.5)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(s.b! - 0.5)).toBeLessThanOrEqual(0.02);
  });

  it('scales a locality by its availability (min(1, 1.4 x healthy share)) and skips it when empty', () => {
    const hosts = fleet();
    unhealthy(hosts, 'a1');
    const lb = balancer({
      clientLocality: client,
      distribute: [{ from: 'region1/zone1', to: { 'region1/zone1': 80, 'region1/zone2': 20 } }],
    });
    lb.update(hosts);
    // 80 x 0.7 = 56 against 20.
    expect(Math.abs(byLetter(lb, 20_000).a! - 56 / 76)).toBeLessThanOrEqual(0.02);
    unhealthy(hosts, 'a2');
    lb.update(hosts);
    expect(byLetter(lb).b).toBe(1);
  });
});

describe('failoverPriority (labels)', () => {
  const network = 'topology.istio.io/network';

  function labelled(): Host[] {
    return [
      host('p', { network: 'n1', labels: { version: 'v1' } }),
      host('q', { network: 'n1', labels: { version: 'v2' } }),
      host('r', { network: 'n2', labels: { version: 'v1' } }),
      host('s', { network: 'n2', labels: { version: 'v2' } }),
    ];
  }

  it('orders endpoints by how many leading labels match the client (N labels: P0..PN)', () => {
    const hosts = labelled();
    const lb = balancer({
      failoverEnabled: true,
      failoverPriority: [network, 'version'],
      clientNetwork: 'n1',
      clientLabels: { version: 'v1' },
    });
    lb.update(hosts);
    expect(lb.describe().map((p) => p.hosts)).toEqual([['p:8080'], ['q:8080'], ['r:8080', 's:8080']]);
    expect(nameOf(lb.pick(NO_PICK_CONTEXT))).toBe('p');
    unhealthy(hosts, 'p');
    lb.update(hosts);
    expect(share(shares(lb, 1_000), 'q')).toBe(1);
    unhealthy(hosts, 'q');
    lb.update(hosts);
    const s = shares(lb, 2_000);
    expect(share(s, 'r') + share(s, 's')).toBe(1);
  });

  it('compares key=value entries with the given value instead of the client label', () => {
    const lb = balancer({ failoverEnabled: true, failoverPriority: ['version=v1', 'topology.istio.io/cluster=clusterA'] });
    lb.update([
      host('x', { labels: { version: 'v1', 'topology.istio.io/cluster': 'clusterA' } }),
      host('y', { labels: { version: 'v1', 'topology.istio.io/cluster': 'clusterB' } }),
      host('z', { labels: { version: 'v2', 'topology.istio.io/cluster': 'clusterA' } }),
    ]);
    expect(lb.describe().map((p) => p.hosts)).toEqual([['x:8080'], ['y:8080'], ['z:8080']]);
  });

  it('combines with explicit failover: label priorities first, locality within each', () => {
    const lb = balancer({
      failoverEnabled: true,
      failoverPriority: ['version'],
      failover: [{ from: 'region1', to: 'region2' }],
      clientLocality: client,
      clientLabels: { version: 'v1' },
    });
    lb.update([
      host('far-v1', { locality: 'region2/zone3', labels: { version: 'v1' } }),
      host('near-v1', { locality: 'region1/zone1', labels: { version: 'v1' } }),
      host('near-v2', { locality: 'region1/zone1', labels: { version: 'v2' } }),
    ]);
    expect(lb.describe().map((p) => p.hosts)).toEqual([['near-v1:8080'], ['far-v1:8080'], ['near-v2:8080']]);
  });
});

describe('consistent hashing across priorities', () => {
  it('chooses the priority from the request hash, so a key keeps its host while traffic spills', () => {
    const hosts = fleet();
    unhealthy(hosts, 'a1');
    const lb = new PriorityBalancer(
      () => new RingHashBalancer({}, testDeps(61)),
      { locality: { clientLocality: client, failoverEnabled: true } },
      testDeps(61),
    );
    expect(lb.hashBased).toBe(true);
    lb.update(hosts);
    const keys = requestHashes(2_000);
    let toB = 0;
    for (const hash of keys) {
      const first = nameOf(lb.pick({ hash }));
      for (let i = 0; i < 3; i++) expect(nameOf(lb.pick({ hash }))).toBe(first);
      if (first.startsWith('b')) toB++;
    }
    expect(Math.abs(toB / keys.length - 0.3)).toBeLessThanOrEqual(0.03);
  });
});
