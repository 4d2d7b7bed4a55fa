import { describe, expect, it } from 'vitest';
import { NO_PICK_CONTEXT } from '../../src/balancer/balancer.js';
import { RoundRobinBalancer } from '../../src/balancer/round-robin.js';
import { host, nameOf, share, shares, testDeps } from './fixtures.js';

describe('ROUND_ROBIN', () => {
  it('visits every host once per round when weights are equal', () => {
    const lb = new RoundRobinBalancer({}, testDeps());
    lb.update(['a', 'b', 'c', 'd'].map((n) => host(n)));
    for (let round = 0; round < 5; round++) {
      const seen = new Set(Array.from({ length: 4 }, () => nameOf(lb.pick(NO_PICK_CONTEXT))));
      expect(seen).toEqual(new Set(['a', 'b', 'c', 'd']));
    }
  });

  it('starts at a random host so replicas do not all hit the same one first', () => {
    const firsts = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const lb = new RoundRobinBalancer({}, testDeps(seed));
      lb.update(['a', 'b', 'c', 'd'].map((n) => host(n)));
      firsts.add(nameOf(lb.pick(NO_PICK_CONTEXT)));
    }
    expect(firsts.size).toBeGreaterThan(1);
  });

  it('honours weights 3:1 over 10,000 picks within ±2 points', () => {
    const lb = new RoundRobinBalancer({}, testDeps());
    lb.update([host('a', { weight: 3 }), host('b', { weight: 1 })]);
    const s = shares(lb, 10_000);
    expect(Math.abs(share(s, 'a') - 0.75)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(share(s, 'b') - 0.25)).toBeLessThanOrEqual(0.02);
  });

  it('interleaves weights smoothly: 5:1:1 is a rotation of a a b a c a a, never five a in a row', () => {
    const lb = new RoundRobinBalancer({}, testDeps(7));
    lb.update([host('a', { weight: 5 }), host('b', { weight: 1 }), host('c', { weight: 1 })]);
    const seq = Array.from({ length: 70 }, () => nameOf(lb.pick(NO_PICK_CONTEXT))).join('');
    const cycle = 'aabacaa';
    const rotations = Array.from({ length: 7 }, (_, i) => cycle.slice(i) + cycle.slice(0, i));
    expect(rotations).toContain(seq.slice(0, 7));
    expect(seq).toBe(seq.slice(0, 7).repeat(10));
    expect(seq).not.toContain('aaaaa');
  });

  it('reduces weights by their common divisor (300:100 behaves as 3:1)', () => {
    const lb = new RoundRobinBalancer({}, testDeps());
    lb.update([host('a', { weight: 300 }), host('b', { weight: 100 })]);
    const seq = Array.from({ length: 8 }, () => nameOf(lb.pick(NO_PICK_CONTEXT))).join('');
    expect(seq.split('b').length - 1).toBe(2);
  });

  it('falls back to EDF for weights that do not fit a schedule and stays proportional', () => {
    const lb = new RoundRobinBalancer({}, testDeps());
    lb.update([host('a', { weight: 1.5 }), host('b', { weight: 0.5 })]);
    const s = shares(lb, 10_000);
    expect(Math.abs(share(s, 'a') - 0.75)).toBeLessThanOrEqual(0.02);
  });

  it('skips hosts the retry predicate excludes', () => {
    const lb = new RoundRobinBalancer({}, testDeps());
    const hosts = ['a', 'b', 'c'].map((n) => host(n));
    lb.update(hosts);
    const ctx = { exclude: (h: (typeof hosts)[number]) => h.endpoint.address !== 'c' };
    for (let i = 0; i < 10; i++) expect(nameOf(lb.pick(ctx))).toBe('c');
  });

  it('returns undefined without hosts', () => {
    const lb = new RoundRobinBalancer({}, testDeps());
    lb.update([]);
    expect(lb.pick(NO_PICK_CONTEXT)).toBeUndefined();
  });
});
