import { seededRandom } from '../../src/clock.js';
import { parseLocality, type Endpoint } from '../../src/discovery/endpoint.js';
import type { BalancerDeps, LoadBalancer, PickContext } from '../../src/balancer/balancer.js';
import { NO_PICK_CONTEXT } from '../../src/balancer/balancer.js';
import { createHost, type Host } from '../../src/balancer/host.js';
import { TestClock } from '../helpers/test-clock.js';

export function testDeps(seed = 1, clock: TestClock = new TestClock({ now: 0 })): BalancerDeps & { clock: TestClock } {
  return { clock, random: seededRandom(seed) };
}

export interface EndpointSpec {
  weight?: number;
  locality?: string;
  labels?: Record<string, string>;
  network?: string;
  ready?: boolean;
}

/** A host named `name` (also its address), port 8080; `addedAt` -Infinity unless given. */
export function host(name: string, spec: EndpointSpec = {}, addedAt = -Infinity): Host {
  const endpoint: Endpoint = {
    key: `${name}:8080`,
    address: name,
    port: 8080,
    weight: spec.weight ?? 1,
    labels: spec.labels ?? {},
    locality: parseLocality(spec.locality),
    ...(spec.network !== undefined ? { network: spec.network } : {}),
    ready: spec.ready ?? true,
  };
  return createHost(endpoint, addedAt);
}

/** Host address (the `name` given to `host`) of a pick, or `-` for none. */
export function nameOf(h: Host | undefined): string {
  return h === undefined ? '-' : h.endpoint.address;
}

/** Share of `picks` picks per host name, as fractions. */
export function shares(lb: LoadBalancer, picks: number, ctx: PickContext = NO_PICK_CONTEXT): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const name = nameOf(lb.pick(ctx));
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  for (const [k, v] of counts) counts.set(k, v / picks);
  return counts;
}

export function share(map: Map<string, number>, name: string): number {
  return map.get(name) ?? 0;
}

/** `n` deterministic 32-bit request hashes. */
export function requestHashes(n: number, seed = 99): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => Math.floor(random() * 4294967296) >>> 0);
}
