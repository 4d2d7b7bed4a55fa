import { BalancerConfigError, type BalancerDeps, type LoadBalancer } from './balancer.js';
import { LeastRequestBalancer } from './least-request.js';
import { PriorityBalancer, type PriorityBalancerOptions } from './locality.js';
import { MaglevBalancer } from './maglev.js';
import { PeakEwmaBalancer } from './peak-ewma.js';
import { RandomBalancer } from './random.js';
import { RingHashBalancer } from './ring-hash.js';
import { RoundRobinBalancer } from './round-robin.js';
import {
  balancerNames,
  hasBalancer,
  isBuiltInBalancer,
  registerBalancer,
  userBalancer,
  type BalancerFactory,
  type BuiltInBalancerName,
} from './user-balancers.js';
import type { BalancerOptions } from './options.js';

/** Istio's default when `simple` is unset or UNSPECIFIED (since Istio 1.14; before, ROUND_ROBIN). */
export const DEFAULT_BALANCER_POLICY = 'LEAST_REQUEST';

const builtIns = {
  ROUND_ROBIN: (options, deps) => new RoundRobinBalancer(options, deps),
  RANDOM: (_options, deps) => new RandomBalancer(deps),
  LEAST_REQUEST: (options, deps) => new LeastRequestBalancer(options, deps),
  // Istio: "Deprecated. Use LEAST_REQUEST instead." Pilot emits LEAST_REQUEST for it.
  LEAST_CONN: (options, deps) => new LeastRequestBalancer(options, deps),
  RING_HASH: (options, deps) => new RingHashBalancer(options, deps),
  MAGLEV: (options, deps) => new MaglevBalancer(options, deps),
  PEAK_EWMA: (options, deps) => new PeakEwmaBalancer(options, deps),
} satisfies Record<BuiltInBalancerName, BalancerFactory>;

export { balancerNames, hasBalancer, isBuiltInBalancer, registerBalancer, type BalancerFactory, type BalancerOptions };

/** Makes a balancer of the policy registered under `name`. */
export function createBalancer(name: string, options: BalancerOptions, deps: BalancerDeps): LoadBalancer {
  const factory = isBuiltInBalancer(name) ? builtIns[name] : userBalancer(name);
  if (factory === undefined) {
    throw new BalancerConfigError(`unknown load balancer policy ${JSON.stringify(name)}; registered: ${balancerNames().join(', ')}`);
  }
  return factory(options, deps);
}

/** Everything a cluster's balancer is compiled from. */
export interface ClusterBalancerSpec extends PriorityBalancerOptions {
  /** Registered policy name, e.g. Istio's `simple` value, `RING_HASH`, `MAGLEV` or `PEAK_EWMA`. */
  readonly policy: string;
  readonly options?: BalancerOptions;
}

/**
 * The balancer the data path holds per cluster: priorities, locality weights and panic
 * (`PriorityBalancer`) over children of the named policy. Option errors surface here, once,
 * when the snapshot is built.
 */
export function createClusterBalancer(spec: ClusterBalancerSpec, deps: BalancerDeps): PriorityBalancer {
  const options = spec.options ?? {};
  // Fail on an unknown name or bad options now rather than on the first update.
  createBalancer(spec.policy, options, deps);
  return new PriorityBalancer(() => createBalancer(spec.policy, options, deps), spec, deps);
}
