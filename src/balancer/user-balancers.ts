import { BalancerConfigError, type BalancerDeps, type LoadBalancer } from './balancer.js';
import type { BalancerOptions } from './options.js';
import { sharedState } from '../shared-state.js';

// Registration lives apart from the built-in balancers so that the package's entry can offer
// `registerBalancer` without loading them: they load with the mesh.

/** Makes one balancer; called once per cluster (and per priority/locality group) per snapshot. */
export type BalancerFactory = (options: BalancerOptions, deps: BalancerDeps) => LoadBalancer;

/** The policies sidecarless ships, in the order `balancerNames()` lists them. */
export const BUILT_IN_BALANCERS = ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST', 'LEAST_CONN', 'RING_HASH', 'MAGLEV', 'PEAK_EWMA'] as const;
export type BuiltInBalancerName = (typeof BUILT_IN_BALANCERS)[number];

const builtInNames: ReadonlySet<string> = new Set(BUILT_IN_BALANCERS);
/**
 * User policies, one registry per process: a policy registered through one build of the package
 * (ESM or CJS) is found by a mesh created through the other.
 */
const userPolicies = sharedState('balancers.v1', () => new Map<string, BalancerFactory>());

/** Registers a user policy under `name`; names already taken (built-in or not) are refused. */
export function registerBalancer(name: string, factory: BalancerFactory): void {
  if (hasBalancer(name)) throw new BalancerConfigError(`load balancer policy ${JSON.stringify(name)} is already registered`);
  userPolicies.set(name, factory);
}

/** True when a policy is registered under `name`. */
export function hasBalancer(name: string): boolean {
  return builtInNames.has(name) || userPolicies.has(name);
}

/** True when `name` is one of the policies sidecarless ships (their options can be checked ahead of use). */
export function isBuiltInBalancer(name: string): name is BuiltInBalancerName {
  return builtInNames.has(name);
}

/** Registered policy names, built-ins first. */
export function balancerNames(): string[] {
  return [...BUILT_IN_BALANCERS, ...userPolicies.keys()];
}

/** The user policy registered under `name`, if any. */
export function userBalancer(name: string): BalancerFactory | undefined {
  return userPolicies.get(name);
}
