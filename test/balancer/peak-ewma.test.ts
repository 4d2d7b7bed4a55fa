import { describe, expect, it } from 'vitest';
import { BalancerConfigError, NO_PICK_CONTEXT } from '../../src/balancer/balancer.js';
import { onFinish, onStart, peakEwmaLatency, type Host } from '../../src/balancer/host.js';
import { PeakEwmaBalancer } from '../../src/balancer/peak-ewma.js';
import { TestClock } from '../helpers/test-clock.js';
import { host, nameOf, testDeps } from './fixtures.js';

/** Sends `n` sequential requests, one per clock ms; returns the share each host received. */
function drive(lb: PeakEwmaBalancer, clock: TestClock, n: number, latency: Record<string, number>): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const h = lb.pick(NO_PICK_CONTEXT)!;
    const name = nameOf(h);
    counts.set(name, (counts.get(name) ?? 0) + 1);
    onStart(h);
    clock.advance(1);
    onFinish(h, latency[name]!, true, clock.now());
  }
  for (const [k, v] of counts) counts.set(k, v / n);
  return counts;
}

describe('peak EWMA state (onFinish)', () => {
  it('jumps to a higher sample at once and decays towards lower samples with tau', () => {
    const h = host('a', {}, 0);
    onStart(h);
    onFinish(h, 10, true, 0);
    expect(peakEwmaLatency(h, 0)).toBe(10);
    onFinish(h, 100, true, 1);
    expect(peakEwmaLatency(h, 1)).toBe(100);
    // 10 s later (one tau) without samples: 100 / e.
    expect(peakEwmaLatency(h, 10_001)).toBeCloseTo(100 / Math.E, 5);
    // A low sample does not pull it below the decayed estimate...
    onFinish(h, 1, true, 10_001);
    expect(peakEwmaLatency(h, 10_001)).toBeCloseTo(100 / Math.E, 5);
    // ...but the estimate keeps decaying towards the samples, never below them.
    for (let t = 10_001; t <= 100_001; t += 1000) onFinish(h, 1, true, t);
    expect(peakEwmaLatency(h, 100_001)).toBeCloseTo(1, 5);
  });

  it('does not count a failed first request as a latency sample', () => {
    const h = host('a', {}, 0);
    onStart(h);
    onFinish(h, 0.1, false, 5);
    expect(peakEwmaLatency(h, 5)).toBeUndefined();
    expect(h.active).toBe(0);
  });
});

describe('PEAK_EWMA', () => {
  it('moves traffic away from a host whose latency rises, and back after it recovers', () => {
    const clock = new TestClock({ now: 0 });
    const lb = new PeakEwmaBalancer({}, testDeps(21, clock));
    lb.update(['a', 'b', 'c'].map((n) => host(n, {}, 0)));

    const even = drive(lb, clock, 3_000, { a: 10, b: 10, c: 10 });
    expect(even.get('a')).toBeGreaterThan(0.25);

    // a slows down 10x: once measured, it loses every comparison until its estimate decays.
    drive(lb, clock, 100, { a: 100, b: 10, c: 10 });
    const slow = drive(lb, clock, 5_000, { a: 100, b: 10, c: 10 });
    expect(slow.get('a') ?? 0).toBeLessThan(0.02);

    // a recovers. Its estimate decays (tau 10 s) below its peers' after ~23 s; it is probed, seen
    // fast and back in rotation.
    drive(lb, clock, 30_000, { a: 10, b: 10, c: 10 });
    const recovered = drive(lb, clock, 6_000, { a: 10, b: 10, c: 10 });
    expect(Math.abs((recovered.get('a') ?? 0) - 1 / 3)).toBeLessThanOrEqual(0.05);
  });

  it('weighs in-flight requests: cost = latency x (active + 1)', () => {
    const clock = new TestClock({ now: 0 });
    const lb = new PeakEwmaBalancer({}, testDeps(22, clock));
    const hosts = ['a', 'b', 'c'].map((n) => host(n, {}, 0));
    for (const h of hosts) {
      onStart(h);
      onFinish(h, 10, true, 0);
    }
    hosts[0]!.active = 4;
    lb.update(hosts);
    let a = 0;
    for (let i = 0; i < 3_000; i++) if (lb.pick(NO_PICK_CONTEXT) === hosts[0]) a++;
    // Two distinct samples from three hosts always include an idle one.
    expect(a).toBe(0);
  });

  it("probes a never-measured host once at a time (Finagle's penalty while the probe is in flight)", () => {
    const clock = new TestClock({ now: 0 });
    const lb = new PeakEwmaBalancer({}, testDeps(23, clock));
    const [a, b, fresh] = [host('a', {}, 0), host('b', {}, 0), host('new', {}, 0)] as [Host, Host, Host];
    for (const h of [a, b]) {
      onStart(h);
      onFinish(h, 5, true, 0);
    }
    lb.update([a, b, fresh]);
    let probe: Host | undefined;
    for (let i = 0; i < 100 && probe !== fresh; i++) probe = lb.pick(NO_PICK_CONTEXT);
    expect(probe).toBe(fresh);
    onStart(fresh);
    for (let i = 0; i < 1_000; i++) expect(lb.pick(NO_PICK_CONTEXT)).not.toBe(fresh);
    onFinish(fresh, 1, true, 1);
    let after = 0;
    for (let i = 0; i < 1_000; i++) if (lb.pick(NO_PICK_CONTEXT) === fresh) after++;
    expect(after).toBeGreaterThan(300);
  });

  it("uses defaultRttMs (Linkerd's rule) for never-measured hosts when given", () => {
    const lb = new PeakEwmaBalancer({ defaultRttMs: 30 }, testDeps(24, new TestClock({ now: 0 })));
    const fresh = host('new', {}, 0);
    onStart(fresh);
    expect(lb.cost(fresh, 0)).toBe(60);
  });

  it('sets the decay constant on its hosts and validates options', () => {
    const lb = new PeakEwmaBalancer({ decayMs: 2_000 }, testDeps());
    const h = host('a');
    lb.update([h]);
    expect(h.ewma.tauMs).toBe(2_000);
    expect(() => new PeakEwmaBalancer({ decayMs: 0 }, testDeps())).toThrow(BalancerConfigError);
    expect(() => new PeakEwmaBalancer({ choiceCount: 1 }, testDeps())).toThrow(BalancerConfigError);
  });
});
