import { describe, expect, it } from 'vitest';
import { BalancerConfigError } from '../../src/balancer/balancer.js';
import { isPrime, MaglevBalancer } from '../../src/balancer/maglev.js';
import { host, nameOf, requestHashes, testDeps } from './fixtures.js';

const names = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'];

function maglev(hostNames: readonly string[], seed = 1): MaglevBalancer {
  const lb = new MaglevBalancer({}, testDeps(seed));
  lb.update(hostNames.map((n) => host(n)));
  return lb;
}

describe('MAGLEV', () => {
  it('defaults to a table of 65537 and requires a prime size up to 5,000,011', () => {
    expect(new MaglevBalancer({}, testDeps()).tableSize).toBe(65537);
    expect(new MaglevBalancer({ tableSize: 0 }, testDeps()).tableSize).toBe(65537);
    expect(new MaglevBalancer({ tableSize: 251 }, testDeps()).tableSize).toBe(251);
    expect(() => new MaglevBalancer({ tableSize: 65536 }, testDeps())).toThrow(BalancerConfigError);
    expect(() => new MaglevBalancer({ tableSize: 5_000_017 }, testDeps())).toThrow(/prime/);
    expect(isPrime(5_000_011)).toBe(true);
    expect(isPrime(1)).toBe(false);
    expect(isPrime(65537)).toBe(true);
    expect(isPrime(65539)).toBe(true);
    expect(isPrime(65541)).toBe(false);
  });

  it('sends the same hash to the same host, whatever the discovery order or client', () => {
    const a = maglev(names, 1);
    const b = maglev([...names].reverse(), 2);
    for (const h of requestHashes(2000)) {
      expect(nameOf(b.pick({ hash: h }))).toBe(nameOf(a.pick({ hash: h })));
    }
  });

  it('spreads keys evenly (each of 5 hosts within 20% ± 2 points)', () => {
    const lb = maglev(names);
    const keys = requestHashes(20_000);
    for (const n of names) {
      const s = keys.filter((h) => nameOf(lb.pick({ hash: h })) === n).length / keys.length;
      expect(Math.abs(s - 0.2)).toBeLessThanOrEqual(0.02);
    }
  });

  it('honours weights 3:1 (±2 points)', () => {
    const lb = new MaglevBalancer({}, testDeps());
    lb.update([host('a', { weight: 3 }), host('b', { weight: 1 })]);
    const keys = requestHashes(20_000);
    const a = keys.filter((h) => nameOf(lb.pick({ hash: h })) === 'a').length / keys.length;
    expect(Math.abs(a - 0.75)).toBeLessThanOrEqual(0.02);
  });

  it('moves about 1/N of the keys when one of N hosts leaves (at most 1/N + 3 points)', () => {
    const lb = maglev(names);
    const keys = requestHashes(20_000);
    const before = keys.map((h) => nameOf(lb.pick({ hash: h })));
    lb.update(names.filter((n) => n !== '10.0.0.4').map((n) => host(n)));
    const after = keys.map((h) => nameOf(lb.pick({ hash: h })));
    const moved = before.filter((b, i) => b !== after[i]).length / keys.length;
    const movedElsewhere = before.filter((b, i) => b !== '10.0.0.4' && b !== after[i]).length / keys.length;
    expect(moved).toBeLessThanOrEqual(1 / names.length + 0.03);
    expect(movedElsewhere).toBeLessThanOrEqual(0.03);
  });

  it('moves to another host on retry (hash mutated per attempt, as Envoy)', () => {
    const lb = maglev(names);
    for (const h of requestHashes(100)) {
      const first = lb.pick({ hash: h })!;
      expect(lb.pick({ hash: h, exclude: (x) => x === first })).not.toBe(first);
    }
  });

  it('returns undefined without hosts', () => {
    const lb = maglev([]);
    expect(lb.pick({ hash: 1 })).toBeUndefined();
  });
});
