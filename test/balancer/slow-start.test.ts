import { describe, expect, it } from 'vitest';
import { BalancerConfigError } from '../../src/balancer/balancer.js';
import { LeastRequestBalancer } from '../../src/balancer/least-request.js';
import { RoundRobinBalancer } from '../../src/balancer/round-robin.js';
import { SlowStart } from '../../src/balancer/slow-start.js';
import { TestClock } from '../helpers/test-clock.js';
import { host, share, shares, testDeps } from './fixtures.js';

describe('SlowStart factor (Envoy slow_start_config)', () => {
  const fresh = host('new', {}, 0);

  it('ramps linearly with aggression 1 and never drops below min weight (10%)', () => {
    const s = new SlowStart({ windowMs: 10_000 });
    expect(s.factor(fresh, 0)).toBe(0.1);
    expect(s.factor(fresh, 500)).toBe(0.1);
    expect(s.factor(fresh, 2_500)).toBeCloseTo(0.25, 10);
    expect(s.factor(fresh, 5_000)).toBeCloseTo(0.5, 10);
    expect(s.factor(fresh, 10_000)).toBe(1);
    expect(s.factor(fresh, 60_000)).toBe(1);
  });

  it('applies time ^ (1 / aggression) and minWeightPercent', () => {
    const s = new SlowStart({ windowMs: 10_000, aggression: 2, minWeightPercent: 0 });
    expect(s.factor(fresh, 2_500)).toBeCloseTo(0.5, 10);
    expect(s.factor(fresh, 0)).toBeCloseTo(Math.sqrt(1 / 10_000), 10);
    // Envoy falls back to 1.0 for aggression <= 0.
    expect(new SlowStart({ windowMs: 10_000, aggression: 0 }).factor(fresh, 5_000)).toBeCloseTo(0.5, 10);
  });

  it('leaves hosts that were never new (addedAt -Infinity) at full weight', () => {
    expect(new SlowStart({ windowMs: 10_000 }).factor(host('old'), 0)).toBe(1);
  });

  it('rejects a window <= 0 and a minimum outside [0, 100]', () => {
    expect(() => new SlowStart({ windowMs: 0 })).toThrow(BalancerConfigError);
    expect(() => new SlowStart({ windowMs: 1_000, minWeightPercent: 150 })).toThrow(BalancerConfigError);
  });
});

describe('slow start in ROUND_ROBIN and LEAST_REQUEST', () => {
  for (const [name, make] of [
    ['ROUND_ROBIN', (deps: ReturnType<typeof testDeps>) => new RoundRobinBalancer({ slowStart: { windowMs: 10_000 } }, deps)],
    ['LEAST_REQUEST', (deps: ReturnType<typeof testDeps>) => new LeastRequestBalancer({ slowStart: { windowMs: 10_000 } }, deps)],
  ] as const) {
    it(`${name}: a new host's share ramps with its weight over the window`, () => {
      const clock = new TestClock({ now: 0 });
      const lb = make(testDeps(31, clock));
      lb.update([host('a'), host('b'), host('new', {}, 0)]);
      clock.advance(1_000);
      // weight 0.1 against 1 + 1
      expect(Math.abs(share(shares(lb, 6_000), 'new') - 0.1 / 2.1)).toBeLessThanOrEqual(0.02);
      clock.advance(4_000);
      expect(Math.abs(share(shares(lb, 6_000), 'new') - 0.5 / 2.5)).toBeLessThanOrEqual(0.02);
      clock.advance(7_000);
      expect(Math.abs(share(shares(lb, 6_000), 'new') - 1 / 3)).toBeLessThanOrEqual(0.02);
    });
  }

  it('LEAST_REQUEST goes back to P2C on active requests once the window is over', () => {
    const clock = new TestClock({ now: 0 });
    const lb = new LeastRequestBalancer({ slowStart: { windowMs: 10_000 } }, testDeps(32, clock));
    const hosts = [host('a'), host('b'), host('new', {}, 0)];
    lb.update(hosts);
    clock.advance(20_000);
    hosts[0]!.active = 10;
    expect(Math.abs(share(shares(lb, 9_000), 'a') - 1 / 9)).toBeLessThanOrEqual(0.02);
  });
});
