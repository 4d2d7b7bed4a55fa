import type { ResourceRef } from '../../issue.js';
import type { RouteRequest } from '../../match/route-request.js';
import type { TokenBucketSpec } from './token-bucket.js';

/** `LOCAL`: a bucket in each process. `SHARED`: one bucket in Redis for every replica. */
export type RateLimitScope = 'LOCAL' | 'SHARED';

/** What splits a limit into one bucket per value. */
export type BucketKeySpec =
  | { readonly kind: 'none' }
  /** A request header's value (`''`, one shared bucket, when the request has none). */
  | { readonly kind: 'header'; readonly name: string }
  /** A query parameter's value. */
  | { readonly kind: 'query'; readonly name: string }
  /** The port the caller addressed: an Envoy filter sits on each outbound listener, one per port. */
  | { readonly kind: 'port' }
  /** `host:port` as addressed: Envoy's virtual host. */
  | { readonly kind: 'vhost' }
  /** Virtual host and route name: Envoy's per-route filter configuration. */
  | { readonly kind: 'route' };

/** A header the limit adds to its refusals (Envoy's `response_headers_to_add`). */
export interface ReplyHeader {
  readonly name: string;
  readonly value: string;
  /**
   * `append` adds a value; `set` replaces or adds; `if-absent` adds only when the reply has no
   * such header; `replace` replaces only when it has.
   */
  readonly mode: 'append' | 'set' | 'if-absent' | 'replace';
}

/** One limit, compiled: a bucket specification and what a refusal looks like. */
export interface CompiledRateLimit {
  /**
   * Identity across snapshots: a limit compiled again with the same id (same resource, same
   * limit, same bucket settings) keeps its buckets.
   */
  readonly id: string;
  /** For people: which resource and limit (`shop/reviews-limits/per-user`). */
  readonly name: string;
  readonly source: ResourceRef;
  /** Field path of the limit in its resource. */
  readonly path: string;
  readonly bucket: TokenBucketSpec;
  readonly scope: RateLimitScope;
  readonly key: BucketKeySpec;
  /** Most keys that keep a bucket at once. */
  readonly maxKeys: number;
  /** Fraction of requests checked (Envoy's `filter_enabled`; 1 for RateLimitPolicy). */
  readonly enabled: number;
  /** Fraction of refusals enforced; the others pass (Envoy's `filter_enforced`). */
  readonly enforced: number;
  /** Status of the local reply (Envoy's `status`, default 429). */
  readonly status: number;
  /** gRPC status of a refused gRPC call: 14 UNAVAILABLE, or 8 RESOURCE_EXHAUSTED. */
  readonly grpcStatus: number;
  readonly replyHeaders: readonly ReplyHeader[];
}

/** What a rule sees of one request: where it was addressed, where it goes, and the request. */
export interface RateLimitTarget {
  /** The service host the caller addressed (Envoy's virtual host). */
  readonly serviceHost: string;
  /** The destination the route picked. */
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number;
  /** The route's name: `http[].name`, `default` for a host without VirtualService. */
  readonly routeName: string | undefined;
  /** Envoy's virtual host name when it is not `serviceHost:port` (inbound: `inbound|http|<port>`). */
  readonly virtualHost?: string;
  /** Method, headers, query; `port` is the port the caller addressed. */
  readonly request: RouteRequest;
}

/** One entry of a host's rule list: picks the limit a request takes a token from, if any. */
export interface RateLimitRule {
  select(target: RateLimitTarget): CompiledRateLimit | undefined;
}

/** The limits in force for one caller, built with each snapshot. */
export interface RateLimitTable {
  /** Every outbound limit a rule can select. */
  readonly limits: readonly CompiledRateLimit[];
  /** Rules for calls to destination `host`, in evaluation order; empty when none. */
  rules(host: string): readonly RateLimitRule[];
  /**
   * Local rate limits of SIDECAR_INBOUND EnvoyFilters that select this workload: compiled for
   * the inbound side (servers), not enforced on outbound calls.
   */
  readonly inbound: readonly CompiledRateLimit[];
  /** The inbound listener's rules (SIDECAR_INBOUND and ANY filters), in filter-chain order. */
  readonly inboundRules: readonly RateLimitRule[];
}

const NO_RULES: readonly RateLimitRule[] = [];

/** The table of a snapshot without any rate limit. */
export const EMPTY_RATE_LIMITS: RateLimitTable = {
  limits: [],
  rules: () => NO_RULES,
  inbound: [],
  inboundRules: [],
};
