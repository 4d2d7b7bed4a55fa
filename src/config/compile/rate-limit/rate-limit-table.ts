import type { CompileContext, IssueSink } from '../context.js';
import type { MeshResource } from '../../resource.js';
import type { CompiledRateLimit, RateLimitRule, RateLimitTable } from '../../../resilience/rate-limit/rate-limit-spec.js';
import { EMPTY_RATE_LIMITS } from '../../../resilience/rate-limit/rate-limit-spec.js';
import type { EnvoyFilterLimits } from './envoy-filters.js';
import { compileEnvoyFilters } from './envoy-filters.js';
import { RateLimitPolicyIndex } from './rate-limit-policies.js';

/** The rate-limit resources compiled for one caller; reused while they are unchanged. */
export interface CompiledRateLimits {
  readonly policies: RateLimitPolicyIndex;
  readonly filters: EnvoyFilterLimits;
}

/** Compiles the RateLimitPolicies and EnvoyFilters among `resources` for the caller. */
export function compileRateLimits(resources: readonly MeshResource[], ctx: CompileContext, sink: IssueSink): CompiledRateLimits {
  return { policies: new RateLimitPolicyIndex(resources, ctx), filters: compileEnvoyFilters(resources, ctx, sink) };
}

/** Hosts remembered per snapshot before the memo starts over (hosts can be arbitrary names). */
const MAX_MEMO = 10_000;
const NONE: readonly RateLimitRule[] = [];

/**
 * The snapshot's table: a host's rules are its RateLimitPolicy limits, then the EnvoyFilter local
 * rate limits (which sit on every outbound listener), worked out once per host.
 * `serviceNamespace` tells where a host's service lives, for the policy lookup order.
 */
export function rateLimitTable(compiled: CompiledRateLimits, serviceNamespace: (host: string) => string | undefined): RateLimitTable {
  const { policies, filters } = compiled;
  const limits: CompiledRateLimit[] = [...policies.limits, ...filters.limits];
  if (limits.length === 0 && filters.inbound.length === 0) return EMPTY_RATE_LIMITS;
  const memo = new Map<string, readonly RateLimitRule[]>();
  return {
    limits,
    inbound: filters.inbound,
    inboundRules: filters.inboundRules,
    rules(host: string): readonly RateLimitRule[] {
      let rules = memo.get(host);
      if (rules === undefined) {
        const own = policies.lookup(host, serviceNamespace(host));
        rules = own.length === 0 && filters.rules.length === 0 ? NONE : [...own, ...filters.rules];
        if (memo.size >= MAX_MEMO) memo.clear();
        memo.set(host, rules);
      }
      return rules;
    },
  };
}
