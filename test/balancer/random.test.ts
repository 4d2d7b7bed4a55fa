import { describe, expect, it } from 'vitest';
import { RandomBalancer } from '../../src/balancer/random.js';
import { host, share, shares, testDeps } from './fixtures.js';

describe('RANDOM', () => {
  it('is uniform with equal weights (4 hosts, 10,000 picks, ±2 points)', () => {
    const lb = new RandomBalancer(testDeps(3));
    lb.update(['a', 'b', 'c', 'd'].map((n) => host(n)));
    const s = shares(lb, 10_000);
    for (const n of ['a', 'b', 'c', 'd']) expect(Math.abs(share(s, n) - 0.25)).toBeLessThanOrEqual(0.02);
  });

  it('honours weights 3:1 over 10,000 picks within ±2 points', () => {
    const lb = new RandomBalancer(testDeps(4));
    lb.update([host('a', { weight: 3 }), host('b', { weight: 1 })]);
    const s = shares(lb, 10_000);
    expect(Math.abs(share(s, 'a') - 0.75)).toBeLessThanOrEqual(0.02);
  });

  it('honours weights 1:2:7 within ±2 points', () => {
    const lb = new RandomBalancer(testDeps(5));
    lb.update([host('a', { weight: 1 }), host('b', { weight: 2 }), host('c', { weight: 7 })]);
    const s = shares(lb, 20_000);
    expect(Math.abs(share(s, 'a') - 0.1)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(share(s, 'b') - 0.2)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(share(s, 'c') - 0.7)).toBeLessThanOrEqual(0.02);
  });
});
