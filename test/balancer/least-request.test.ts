import { describe, expect, it } from 'vitest';
import { BalancerConfigError } from '../../src/balancer/balancer.js';
import { LeastRequestBalancer } from '../../src/balancer/least-request.js';
import { host, share, shares, testDeps } from './fixtures.js';

describe('LEAST_REQUEST', () => {
  it('prefers hosts with fewer active requests (P2C: the busy host only wins when sampled twice, 1/9)', () => {
    const lb = new LeastRequestBalancer({}, testDeps(11));
    const hosts = ['a', 'b', 'c'].map((n) => host(n));
    hosts[0]!.active = 10;
    lb.update(hosts);
    const s = shares(lb, 20_000);
    expect(Math.abs(share(s, 'a') - 1 / 9)).toBeLessThanOrEqual(0.02);
    expect(Math.abs(share(s, 'b') - 4 / 9)).toBeLessThanOrEqual(0.02);
  });

  it('never sends to the single busiest host with two hosts', () => {
    const lb = new LeastRequestBalancer({}, testDeps(12));
    const hosts = [host('a'), host('b')];
    hosts[0]!.active = 1;
    lb.update(hosts);
    const s = shares(lb, 5_000);
    // a wins only if both samples are a: 1/4.
    expect(Math.abs(share(s, 'a') - 0.25)).toBeLessThanOrEqual(0.02);
  });

  it('samples choiceCount hosts (3 choices: the busy host wins 1/27)', () => {
    const lb = new LeastRequestBalancer({ choiceCount: 3 }, testDeps(13));
    const hosts = ['a', 'b', 'c'].map((n) => host(n));
    hosts[0]!.active = 5;
    lb.update(hosts);
    expect(Math.abs(share(shares(lb, 20_000), 'a') - 1 / 27)).toBeLessThanOrEqual(0.01);
  });

  it('reads active counts live, without an update', () => {
    const lb = new LeastRequestBalancer({}, testDeps(14));
    const hosts = ['a', 'b'].map((n) => host(n));
    lb.update(hosts);
    hosts[1]!.active = 3;
    expect(share(shares(lb, 4_000), 'b')).toBeLessThan(0.3);
  });

  it('with unequal weights uses weight / (active + 1) ^ bias (bias 1: 2/4 vs 1/1 gives 1:2)', () => {
    const lb = new LeastRequestBalancer({}, testDeps());
    const hosts = [host('a', { weight: 2 }), host('b', { weight: 1 })];
    hosts[0]!.active = 3;
    lb.update(hosts);
    expect(Math.abs(share(shares(lb, 9_000), 'a') - 1 / 3)).toBeLessThanOrEqual(0.02);
  });

  it('with activeRequestBias 0 is weighted round robin (2:1 whatever the load)', () => {
    const lb = new LeastRequestBalancer({ activeRequestBias: 0 }, testDeps());
    const hosts = [host('a', { weight: 2 }), host('b', { weight: 1 })];
    hosts[0]!.active = 3;
    lb.update(hosts);
    expect(Math.abs(share(shares(lb, 9_000), 'a') - 2 / 3)).toBeLessThanOrEqual(0.02);
  });

  it('with activeRequestBias 2 penalises load harder (2/16 vs 1/1)', () => {
    const lb = new LeastRequestBalancer({ activeRequestBias: 2 }, testDeps());
    const hosts = [host('a', { weight: 2 }), host('b', { weight: 1 })];
    hosts[0]!.active = 3;
    lb.update(hosts);
    expect(Math.abs(share(shares(lb, 9_000), 'a') - 0.125 / 1.125)).toBeLessThanOrEqual(0.02);
  });

  it('rejects choiceCount < 2 and a negative bias, as Envoy', () => {
    expect(() => new LeastRequestBalancer({ choiceCount: 1 }, testDeps())).toThrow(BalancerConfigError);
    expect(() => new LeastRequestBalancer({ activeRequestBias: -1 }, testDeps())).toThrow(BalancerConfigError);
  });
});
