import { describe, expect, it } from 'vitest';
import { BalancerConfigError, HOST_SELECTION_RETRY_MAX_ATTEMPTS, NO_PICK_CONTEXT } from '../../src/balancer/balancer.js';
import type { Host } from '../../src/balancer/host.js';
import { balancerNames, createBalancer, createClusterBalancer, DEFAULT_BALANCER_POLICY, hasBalancer, registerBalancer } from '../../src/balancer/registry.js';
import { parseLocality } from '../../src/discovery/endpoint.js';
import { host, nameOf, share, shares, testDeps } from './fixtures.js';

describe('balancer registry', () => {
  it("registers the built-ins under Istio's names (and ours)", () => {
    for (const name of ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST', 'LEAST_CONN', 'RING_HASH', 'MAGLEV', 'PEAK_EWMA']) {
      expect(hasBalancer(name)).toBe(true);
      const lb = createBalancer(name, {}, testDeps());
      lb.update([host('a'), host('b')]);
      expect(['a', 'b']).toContain(nameOf(lb.pick(NO_PICK_CONTEXT)));
    }
    expect(DEFAULT_BALANCER_POLICY).toBe('LEAST_REQUEST');
    expect(createBalancer('RING_HASH', {}, testDeps()).hashBased).toBe(true);
  });

  it('refuses unknown names with a stable error code', () => {
    expect(() => createBalancer('PASSTHROUGH', {}, testDeps())).toThrow(BalancerConfigError);
    try {
      createBalancer('NOPE', {}, testDeps());
    } catch (error) {
      expect((error as BalancerConfigError).code).toBe('ERR_MESH_BALANCER_CONFIG');
    }
  });

  it('takes user policies by name and refuses to replace one', () => {
    let made = 0;
    registerBalancer('FIRST_HOST', (options) => {
      made++;
      let hosts: readonly Host[] = [];
      const prefer = options.extra?.['prefer'];
      return {
        update: (h) => {
          hosts = h;
        },
        pick: () => hosts.find((h) => h.endpoint.address === prefer) ?? hosts[0],
      };
    });
    expect(balancerNames()).toContain('FIRST_HOST');
    const lb = createBalancer('FIRST_HOST', { extra: { prefer: 'b' } }, testDeps());
    lb.update([host('a'), host('b')]);
    expect(nameOf(lb.pick(NO_PICK_CONTEXT))).toBe('b');
    expect(made).toBe(1);
    expect(() => registerBalancer('FIRST_HOST', () => lb)).toThrow(BalancerConfigError);
    expect(() => registerBalancer('ROUND_ROBIN', () => lb)).toThrow(BalancerConfigError);
  });
});

describe('createClusterBalancer', () => {
  it('rejects bad options when the balancer is made, before any pick', () => {
    expect(() => createClusterBalancer({ policy: 'MAGLEV', options: { tableSize: 100 } }, testDeps())).toThrow(/prime/);
    expect(() => createClusterBalancer({ policy: 'ROUND_ROBIN', panicThresholdPercent: -1 }, testDeps())).toThrow(BalancerConfigError);
  });

  it('composes locality priorities, panic and the named policy', () => {
    const lb = createClusterBalancer(
      {
        policy: 'ROUND_ROBIN',
        locality: { clientLocality: parseLocality('r1/z1'), failoverEnabled: true },
      },
      testDeps(71),
    );
    const hosts = [host('near', { locality: 'r1/z1' }), host('far1', { locality: 'r2/z1' }), host('far2', { locality: 'r2/z1' })];
    lb.update(hosts);
    expect(share(shares(lb, 100), 'near')).toBe(1);
    hosts[0]!.healthy = false;
    lb.update(hosts);
    const s = shares(lb, 100);
    expect(share(s, 'far1')).toBe(0.5);
    expect(share(s, 'far2')).toBe(0.5);
  });

  it('re-selects on retry up to Istio’s 5 attempts, then returns the last host as Envoy does', () => {
    const lb = createClusterBalancer({ policy: 'ROUND_ROBIN' }, testDeps(72));
    const hosts = ['a', 'b', 'c'].map((n) => host(n));
    lb.update(hosts);
    const previous = new Set([hosts[0], hosts[1]]);
    for (let i = 0; i < 20; i++) expect(nameOf(lb.pick({ exclude: (h) => previous.has(h) }))).toBe('c');
    // Every host excluded: one selection plus five re-selections, each checked once, and the host
    // returned is the last one selected (round robin: not the first, so either mistake shows).
    const checked: Host[] = [];
    const picked = lb.pick({
      exclude: (h) => {
        checked.push(h);
        return true;
      },
    });
    expect(checked).toHaveLength(HOST_SELECTION_RETRY_MAX_ATTEMPTS + 1);
    expect(picked).toBe(checked.at(-1));
    expect(picked).not.toBe(checked[0]);
  });
});
