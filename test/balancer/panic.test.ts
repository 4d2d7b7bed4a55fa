import { describe, expect, it } from 'vitest';
import { NO_PICK_CONTEXT } from '../../src/balancer/balancer.js';
import { PriorityBalancer } from '../../src/balancer/locality.js';
import { computePriorityLoad, isInPanic, priorityHealth } from '../../src/balancer/panic.js';
import { RandomBalancer } from '../../src/balancer/random.js';
import { host, share, shares, testDeps } from './fixtures.js';

/** Load with `percents` healthy out of 100 hosts per priority, Envoy defaults. */
function loadFor(percents: number[], threshold = 50) {
  return computePriorityLoad(
    percents,
    percents.map(() => 100),
    threshold,
    1.4,
  );
}

describe('priority load (Envoy priority levels, overprovisioning 1.4)', () => {
  it('matches the table of Envoy’s priority-levels page (P1 fully healthy)', () => {
    const table: Array<[number, number, number]> = [
      [100, 100, 0],
      [72, 100, 0],
      [71, 99, 1],
      [50, 70, 30],
      [25, 35, 65],
      [0, 0, 100],
    ];
    for (const [p0, toP0, toP1] of table) expect(loadFor([p0, 100]).load).toEqual([toP0, toP1]);
  });

  it('spills over three levels (20%, 20%, 100% healthy: 28 / 28 / 44)', () => {
    expect(loadFor([20, 20, 100]).load).toEqual([28, 28, 44]);
  });

  it('computes health with integer truncation and the 100 cap', () => {
    expect(priorityHealth(1, 2, 140)).toBe(70);
    expect(priorityHealth(4, 5, 140)).toBe(100);
    expect(priorityHealth(0, 0, 140)).toBe(0);
  });
});

describe('panic threshold (Envoy default 50%)', () => {
  it('matches the table of Envoy’s panic-threshold page', () => {
    expect(loadFor([72, 72])).toEqual({ load: [100, 0], panic: [false, false] });
    expect(loadFor([50, 60])).toEqual({ load: [70, 30], panic: [false, false] });
    // Normalized total health is 100: no panic although P0 is below the threshold.
    expect(loadFor([25, 100])).toEqual({ load: [35, 65], panic: [false, false] });
    // Below 100 in total and every level under the threshold: load by host count.
    expect(loadFor([25, 25])).toEqual({ load: [50, 50], panic: [true, true] });
    const mixed = loadFor([5, 65]);
    expect(mixed.panic).toEqual([true, false]);
  });

  it('spreads total-panic load by host count', () => {
    expect(computePriorityLoad([0, 0], [1, 3], 50, 1.4).load).toEqual([25, 75]);
  });

  it('with the threshold at 0 never panics: nothing healthy means priority 0 and no host', () => {
    expect(computePriorityLoad([0, 0], [2, 2], 0, 1.4)).toEqual({ load: [100, 0], panic: [false, false] });
    expect(isInPanic(0, 4, 0)).toBe(false);
    expect(isInPanic(1, 4, 50)).toBe(true);
    expect(isInPanic(2, 4, 50)).toBe(false);
  });

  it('balances across all hosts, healthy or not, when under the threshold', () => {
    const lb = new PriorityBalancer(() => new RandomBalancer(testDeps(41)), {}, testDeps(41));
    const hosts = ['a', 'b', 'c', 'd'].map((n) => host(n));
    for (const h of hosts.slice(1)) h.healthy = false;
    lb.update(hosts);
    const s = shares(lb, 8_000);
    for (const n of ['a', 'b', 'c', 'd']) expect(Math.abs(share(s, n) - 0.25)).toBeLessThanOrEqual(0.03);
    expect(lb.describe()[0]!.panic).toBe(true);
  });

  it('uses only healthy hosts at or above the threshold', () => {
    const lb = new PriorityBalancer(() => new RandomBalancer(testDeps(42)), {}, testDeps(42));
    const hosts = ['a', 'b', 'c', 'd'].map((n) => host(n));
    hosts[2]!.healthy = false;
    hosts[3]!.healthy = false;
    lb.update(hosts);
    const s = shares(lb, 4_000);
    expect(share(s, 'c') + share(s, 'd')).toBe(0);
  });

  it('returns no host when nothing is healthy and panic is disabled (Istio minHealthPercent 0)', () => {
    const lb = new PriorityBalancer(() => new RandomBalancer(testDeps(43)), { panicThresholdPercent: 0 }, testDeps(43));
    const hosts = ['a', 'b'].map((n) => host(n));
    for (const h of hosts) h.healthy = false;
    lb.update(hosts);
    expect(lb.pick(NO_PICK_CONTEXT)).toBeUndefined();
  });

  it('never sends to endpoints that are not ready, even in panic', () => {
    const lb = new PriorityBalancer(() => new RandomBalancer(testDeps(44)), {}, testDeps(44));
    const a = host('a');
    a.healthy = false;
    lb.update([a, host('terminating', { ready: false })]);
    expect(share(shares(lb, 500), 'a')).toBe(1);
  });
});
