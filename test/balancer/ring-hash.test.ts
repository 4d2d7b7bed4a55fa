import { describe, expect, it } from 'vitest';
import { BalancerConfigError } from '../../src/balancer/balancer.js';
import { RingHashBalancer } from '../../src/balancer/ring-hash.js';
import { host, nameOf, requestHashes, testDeps } from './fixtures.js';

const names = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];

function ring(hostNames: readonly string[], options = {}, seed = 1): RingHashBalancer {
  const lb = new RingHashBalancer(options, testDeps(seed));
  lb.update(hostNames.map((n) => host(n)));
  return lb;
}

describe('RING_HASH', () => {
  it('sends the same hash to the same host, whatever the discovery order or client', () => {
    const a = ring(names, {}, 1);
    const b = ring([...names].reverse(), {}, 2);
    for (const h of requestHashes(2000)) {
      const first = nameOf(a.pick({ hash: h }));
      expect(nameOf(a.pick({ hash: h }))).toBe(first);
      expect(nameOf(b.pick({ hash: h }))).toBe(first);
    }
  });

  it('spreads keys evenly over equal hosts (each within 20% ± 3 points)', () => {
    const lb = ring(names);
    const counts = new Map<string, number>();
    const keys = requestHashes(20_000);
    for (const h of keys) {
      const n = nameOf(lb.pick({ hash: h }));
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    for (const n of names) expect(Math.abs((counts.get(n) ?? 0) / keys.length - 0.2)).toBeLessThanOrEqual(0.03);
  });

  it('gives a weight-3 host three times the keys of a weight-1 host (±3 points)', () => {
    const lb = new RingHashBalancer({}, testDeps());
    lb.update([host('a', { weight: 3 }), host('b', { weight: 1 })]);
    const keys = requestHashes(20_000);
    const a = keys.filter((h) => nameOf(lb.pick({ hash: h })) === 'a').length / keys.length;
    expect(Math.abs(a - 0.75)).toBeLessThanOrEqual(0.03);
  });

  it('moves about 1/N of the keys when one of N hosts leaves (at most 1/N + 10 points)', () => {
    const lb = ring(names);
    const keys = requestHashes(20_000);
    const before = keys.map((h) => nameOf(lb.pick({ hash: h })));
    lb.update(names.filter((n) => n !== '10.0.0.2').map((n) => host(n)));
    const after = keys.map((h) => nameOf(lb.pick({ hash: h })));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (before[i] === '10.0.0.2') expect(after[i]).not.toBe('10.0.0.2');
      if (before[i] !== after[i]) moved++;
    }
    // The removed host held ~20%; Envoy's rescaling of the ring (more nodes per remaining host)
    // moves a few more.
    expect(moved / keys.length).toBeLessThanOrEqual(1 / names.length + 0.1);
    expect(moved / keys.length).toBeGreaterThanOrEqual(1 / names.length - 0.05);
  });

  it('sizes the ring from minimumRingSize (Envoy default 1024) and caps it at maximumRingSize', () => {
    expect(ring(names).ringSize).toBeGreaterThanOrEqual(1024);
    expect(ring(names, { minimumRingSize: 4096 }).ringSize).toBeGreaterThanOrEqual(4096);
    const capped = new RingHashBalancer({ minimumRingSize: 64, maximumRingSize: 128 }, testDeps());
    capped.update([host('a', { weight: 1000 }), host('b', { weight: 1 })]);
    expect(capped.ringSize).toBeLessThanOrEqual(128 + 2);
  });

  it("treats Istio's minimumRingSize 0 as unset and rejects sizes out of range", () => {
    expect(ring(names, { minimumRingSize: 0 }).ringSize).toBeGreaterThanOrEqual(1024);
    expect(() => new RingHashBalancer({ minimumRingSize: 2048, maximumRingSize: 1024 }, testDeps())).toThrow(BalancerConfigError);
    expect(() => new RingHashBalancer({ minimumRingSize: 9_000_000 }, testDeps())).toThrow(BalancerConfigError);
  });

  it('picks a random host without a hash, and another host on retry', () => {
    const lb = ring(names);
    const seen = new Set(Array.from({ length: 200 }, () => nameOf(lb.pick({}))));
    expect(seen.size).toBe(names.length);
    for (const h of requestHashes(50)) {
      const first = lb.pick({ hash: h })!;
      const retry = lb.pick({ hash: h, exclude: (x) => x === first });
      expect(retry).not.toBe(first);
    }
  });
});
