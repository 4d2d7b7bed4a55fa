import { describe, expect, it } from 'vitest';
import type { Host } from '../../src/balancer/index.js';
import { createHost } from '../../src/balancer/index.js';
import type { Endpoint } from '../../src/discovery/endpoint.js';
import { UNKNOWN_LOCALITY } from '../../src/discovery/endpoint.js';
import type { EjectionChange } from '../../src/resilience/outlier-detector.js';
import { OutlierDetector } from '../../src/resilience/outlier-detector.js';
import { compileOutlierPolicy } from '../../src/resilience/outlier-policy.js';
import { TestClock } from '../helpers/test-clock.js';

function host(address: string): Host {
  const endpoint: Endpoint = { key: `${address}:80`, address, port: 80, labels: {}, locality: UNKNOWN_LOCALITY, weight: 1, ready: true };
  return createHost(endpoint, 0);
}

function detector(spec: Parameters<typeof compileOutlierPolicy>[0], hosts: Host[]) {
  const clock = new TestClock();
  const changes: string[] = [];
  const d = new OutlierDetector(compileOutlierPolicy(spec)!, {
    clock,
    onChange: (h: Host, c: EjectionChange) => changes.push(`${c.action} ${h.endpoint.address}${c.reason ? ` ${c.reason}` : ''}`),
  });
  d.setHosts(hosts);
  return { d, clock, changes };
}

const ok = { status: 200, failure: undefined } as const;
const err500 = { status: 500, failure: undefined } as const;
const refused = { status: 0, failure: 'connect-failure' } as const;

describe('compileOutlierPolicy', () => {
  it("uses istiod's mapping and Envoy's defaults", () => {
    expect(compileOutlierPolicy({})).toEqual({
      consecutive5xx: 5,
      consecutiveGateway: 0,
      consecutiveLocalOrigin: 5,
      splitLocalOrigin: false,
      errorCodes: undefined,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
    });
    // 0 is "unset" for maxEjectionPercent and consecutiveLocalOriginFailures (istiod passes only > 0).
    expect(compileOutlierPolicy({ maxEjectionPercent: 0, consecutiveLocalOriginFailures: 0, consecutive5xxErrors: 0 })).toMatchObject({
      maxEjectionPercent: 10,
      consecutiveLocalOrigin: 5,
      consecutive5xx: 0,
    });
    // max_ejection_time is 300 s, or the base ejection time when that is longer.
    expect(compileOutlierPolicy({ baseEjectionTime: '10m' })?.maxEjectionMs).toBe(600_000);
    expect(compileOutlierPolicy(undefined)).toBeUndefined();
  });
});

describe('OutlierDetector', () => {
  it('needs the errors to be consecutive: a success in between starts the count again', () => {
    const a = host('10.0.0.1');
    const { d, changes } = detector({ consecutive5xxErrors: 3, maxEjectionPercent: 100 }, [a, host('10.0.0.2')]);
    d.report(a, err500);
    d.report(a, err500);
    d.report(a, ok);
    d.report(a, err500);
    d.report(a, err500);
    expect(changes).toEqual([]);
    d.report(a, err500);
    expect(changes).toEqual(['eject 10.0.0.1 consecutive-5xx']);
    expect(a.healthy).toBe(false);
  });

  it('in split mode, any response resets the local-origin count', () => {
    const a = host('10.0.0.1');
    const { d, changes } = detector({ splitExternalLocalOriginErrors: true, consecutiveLocalOriginFailures: 2, maxEjectionPercent: 100 }, [
      a,
      host('10.0.0.2'),
    ]);
    d.report(a, refused);
    d.report(a, err500);
    d.report(a, refused);
    expect(changes).toEqual([]);
    d.report(a, refused);
    expect(changes).toEqual(['eject 10.0.0.1 consecutive-local-origin-failure']);
  });

  it('caps the ejection time at max(300 s, base)', () => {
    const a = host('10.0.0.1');
    const { d, clock } = detector({ consecutive5xxErrors: 1, baseEjectionTime: '200s', interval: '1s', maxEjectionPercent: 100 }, [a, host('10.0.0.2')]);
    const durations: number[] = [];
    for (let i = 0; i < 4; i++) {
      d.report(a, err500);
      const before = clock.now();
      while (d.isEjected(a)) clock.advance(1_000);
      durations.push(clock.now() - before);
    }
    // Backoff 1, 2, then capped at 300 s.
    expect(durations).toEqual([200_000, 300_000, 300_000, 300_000]);
  });

  it('forgets a host that leaves the cluster, ejection included', () => {
    const a = host('10.0.0.1');
    const b = host('10.0.0.2');
    const c = host('10.0.0.3');
    const { d } = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 50 }, [a, b, c]);
    d.report(a, err500);
    expect(d.ejected).toBe(1);
    // A second ejection would make 2 of 3 (67%): refused while a is counted.
    d.report(b, err500);
    expect(d.isEjected(b)).toBe(false);
    d.setHosts([b, c]);
    expect(d.ejected).toBe(0);
    // With a gone, nothing is ejected: b may go (one host always may; 1 of 2 is 50% anyway).
    d.report(b, err500);
    expect(d.isEjected(b)).toBe(true);
  });

  it('returns every ejected host when detection is switched off', () => {
    const a = host('10.0.0.1');
    const { d, changes, clock } = detector({ consecutive5xxErrors: 1, maxEjectionPercent: 100 }, [a, host('10.0.0.2')]);
    d.report(a, err500);
    d.releaseAll();
    expect(a.healthy).toBe(true);
    expect(changes).toEqual(['eject 10.0.0.1 consecutive-5xx', 'uneject 10.0.0.1']);
    expect(clock.waiting.length).toBe(0);
  });

  it('runs no timer while nothing is ejected or decaying', () => {
    const a = host('10.0.0.1');
    const { d, clock } = detector({ consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '1s', maxEjectionPercent: 100 }, [a, host('10.0.0.2')]);
    expect(clock.waiting.length).toBe(0);
    d.report(a, err500);
    expect(clock.waiting.length).toBe(1);
    clock.advance(1_000);
    expect(d.isEjected(a)).toBe(false);
    // The backoff decays one interval later; then the timer stops.
    clock.advance(1_000);
    expect(clock.waiting.length).toBe(0);
  });
});
