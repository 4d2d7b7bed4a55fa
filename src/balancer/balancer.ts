import type { Clock, RandomSource } from '../clock.js';
import { MeshError } from '../errors.js';
import type { Host } from './host.js';

/**
 * What one pick knows about the request. Callers on the hot path reuse one object (or
 * `NO_PICK_CONTEXT`), so picking allocates nothing.
 */
export interface PickContext {
  /**
   * Unsigned 32-bit hash of the request's affinity key (header, cookie, query parameter or source
   * IP per `consistentHash`), computed by the caller with `hashKey`. Hash-based policies pick a
   * random host when it is absent, as Envoy does when no hash can be computed.
   */
  readonly hash?: number;
  /**
   * Retry host predicate (Envoy's `previous_hosts`, Istio's `retryIgnorePreviousHosts`): true for
   * a host to avoid. Selection is re-attempted up to `HOST_SELECTION_RETRY_MAX_ATTEMPTS` times;
   * if every attempt lands on an excluded host the last one is returned, as Envoy does.
   */
  readonly exclude?: (host: Host) => boolean;
  /**
   * Priority levels already attempted, for a retry that should go elsewhere (Istio's
   * `retryRemoteLocalities`, Envoy's previous_priorities): their load moves to the others.
   */
  readonly avoidPriorities?: ReadonlySet<number>;
}

/** The context of a plain pick: no hash, nothing excluded. */
export const NO_PICK_CONTEXT: PickContext = Object.freeze({});

/** Istio sets Envoy's `host_selection_retry_max_attempts` to 5 for its retry policies. */
export const HOST_SELECTION_RETRY_MAX_ATTEMPTS = 5;

/** One load-balancing policy over one set of hosts. */
export interface LoadBalancer {
  /**
   * Replaces the host set. Everything `pick` needs is precomputed here (weights, schedules,
   * rings, tables). Leaf policies balance over exactly the hosts given, healthy or not; health,
   * panic and priorities are `PriorityBalancer`'s concern.
   */
  update(hosts: readonly Host[]): void;
  /** Chooses a host, or `undefined` when there is none. */
  pick(ctx: PickContext): Host | undefined;
  /**
   * True for consistent-hash policies: a wrapper then chooses priorities from `ctx.hash` too and
   * does not split a priority by locality, so affinity survives (Envoy's thread-aware balancers).
   */
  readonly hashBased?: boolean;
}

/** What a balancer may depend on: all time and randomness, injectable for tests. */
export interface BalancerDeps {
  readonly clock: Clock;
  readonly random: RandomSource;
}

/** A balancer option is out of range, or a policy name is unknown or taken. */
export class BalancerConfigError extends MeshError {
  readonly code = 'ERR_MESH_BALANCER_CONFIG';
}

/**
 * Shared shape of the leaf policies: `choose` makes one selection and `pick` re-attempts it while
 * the caller's retry predicate rejects the result. The loop costs nothing without `exclude`.
 */
export abstract class BaseBalancer implements LoadBalancer {
  abstract update(hosts: readonly Host[]): void;

  /** One selection; `attempt` > 0 on re-selection so hash policies can move off the host. */
  protected abstract choose(ctx: PickContext, attempt: number): Host | undefined;

  pick(ctx: PickContext): Host | undefined {
    const first = this.choose(ctx, 0);
    const exclude = ctx.exclude;
    if (first === undefined || exclude === undefined || !exclude(first)) return first;
    let last = first;
    for (let attempt = 1; attempt <= HOST_SELECTION_RETRY_MAX_ATTEMPTS; attempt++) {
      const host = this.choose(ctx, attempt);
      if (host === undefined) break;
      if (!exclude(host)) return host;
      last = host;
    }
    return last;
  }
}

/** A uniform random unsigned 32-bit integer from `random`. */
export function randomUint32(random: RandomSource): number {
  return Math.floor(random() * 4294967296) >>> 0;
}

/** A uniform random integer in [0, n). */
export function randomIndex(random: RandomSource, n: number): number {
  const i = Math.floor(random() * n);
  // Guards against a RandomSource that returns exactly 1.
  return i < n ? i : n - 1;
}
