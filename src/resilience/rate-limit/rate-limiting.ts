import type { MeshClock, RandomSource } from '../../clock.js';
import { QueryCache } from '../../match/http-match.js';
import type { RouteRequest } from '../../match/route-request.js';
import { RateLimitStoreError } from '../errors.js';
import type { RateLimiter, RateLimitVerdict } from './limiter.js';
import { LocalLimiter } from './local-limiter.js';
import type { BucketKeySpec, CompiledRateLimit, RateLimitRule, RateLimitTable, RateLimitTarget } from './rate-limit-spec.js';
import { SharedLimiter } from './shared-limiter.js';
import type { RateLimitRedisOptions } from './shared-store.js';
import { SharedStore } from './shared-store.js';

/** The `rateLimit` option of `createMesh`. */
export interface RateLimitOptions {
  /**
   * Redis for limits with `scope: SHARED` (one budget for every replica). Without it such limits
   * are enforced per process and a `rateLimitError` event says so.
   */
  readonly redis?: RateLimitRedisOptions;
  /**
   * How long a request waits for Redis before its SHARED limit is decided by a local bucket
   * instead. Default 100 ms.
   */
  readonly redisTimeoutMs?: number;
  /** After Redis failed, how long SHARED limits stay local before Redis is tried again. Default 1000 ms. */
  readonly redisRetryMs?: number;
  /** Prefix of the Redis keys (bottleneck ids). Default `sidecarless`. */
  readonly keyPrefix?: string;
}

/** A request the limits refused: which limit, and its bucket's state. */
export interface RateLimitDenial {
  readonly limit: CompiledRateLimit;
  readonly verdict: RateLimitVerdict;
}

/** `undefined`: send it. A denial: refuse it. A promise: a SHARED limit is asking Redis. */
export type RateLimitDecision = RateLimitDenial | Promise<RateLimitDenial | undefined> | undefined;

export interface RateLimitingDeps {
  readonly clock: MeshClock;
  readonly random: RandomSource;
  readonly options: RateLimitOptions;
  /** SHARED limits without Redis, Redis failing and recovering: reported here. */
  readonly onError: (error: RateLimitStoreError) => void;
}

/** The value a limit's key takes for a request (`''`, the limit's one bucket, when not keyed or absent). */
function bucketKey(key: BucketKeySpec, t: RateLimitTarget): string {
  switch (key.kind) {
    case 'none':
      return '';
    case 'header':
      return t.request.header(key.name) ?? '';
    case 'query':
      return new QueryCache(t.request.query).get(key.name) ?? '';
    case 'port':
      return String(t.request.port);
    case 'vhost':
      return t.virtualHost ?? `${t.serviceHost}:${t.request.port}`;
    case 'route':
      return `${t.virtualHost ?? `${t.serviceHost}:${t.request.port}`}/${t.routeName ?? ''}`;
  }
}

/**
 * The mesh's rate limiting: holds the buckets of every limit in force (kept across snapshots
 * while a limit's id is unchanged) and decides each outbound request once, before it is sent
 * and before any retry. Per request it only reads the snapshot's compiled table.
 */
export class RateLimiting {
  private bound: RateLimitTable | undefined;
  private limiters = new Map<CompiledRateLimit, RateLimiter>();
  private byId = new Map<string, RateLimiter>();
  private store: SharedStore | undefined;
  private warnedNoRedis = new Set<string>();
  private closed = false;

  constructor(private readonly deps: RateLimitingDeps) {}

  /**
   * Takes a token from every limit that applies to the request (in rule order, stopping at the
   * first refusal, as Envoy does): local limits first, then SHARED ones, so a request refused
   * locally costs no Redis round trip.
   */
  check(
    table: RateLimitTable,
    request: RouteRequest,
    serviceHost: string,
    routeName: string | undefined,
    host: string,
    subset: string | undefined,
    port: number,
  ): RateLimitDecision {
    // A new snapshot: bind its limits (and release those it no longer has) before anything else.
    if (table !== this.bound) this.bind(table);
    const rules = table.rules(host);
    if (rules.length === 0) return undefined;
    return this.take(rules, { serviceHost, host, subset, port, routeName, request });
  }

  /**
   * The inbound side: the local rate limits of the inbound listener (SIDECAR_INBOUND EnvoyFilters)
   * for a request that came in on `request.port`, in Envoy's terms: virtual host
   * `inbound|http|<port>`, route `default`.
   */
  checkInbound(table: RateLimitTable, request: RouteRequest, host: string): RateLimitDecision {
    if (table !== this.bound) this.bind(table);
    const rules = table.inboundRules;
    if (rules.length === 0) return undefined;
    const port = request.port;
    return this.take(rules, { serviceHost: host, host, subset: undefined, port, routeName: 'default', virtualHost: `inbound|http|${port}`, request });
  }

  private take(rules: readonly RateLimitRule[], target: RateLimitTarget): RateLimitDecision {
    const now = this.deps.clock.now();
    let shared: { limit: CompiledRateLimit; limiter: RateLimiter; key: string }[] | undefined;
    for (let i = 0; i < rules.length; i++) {
      const limit = rules[i]!.select(target);
      if (!limit || !this.draw(limit.enabled)) continue;
      const limiter = this.limiters.get(limit);
      if (!limiter) continue;
      const key = bucketKey(limit.key, target);
      if (limiter instanceof SharedLimiter) {
        (shared ??= []).push({ limit, limiter, key });
        continue;
      }
      const verdict = limiter.tryTake(key, now) as RateLimitVerdict;
      if (!verdict.allowed && this.draw(limit.enforced)) return { limit, verdict };
    }
    return shared ? this.checkShared(shared, now) : undefined;
  }

  private async checkShared(
    list: readonly { limit: CompiledRateLimit; limiter: RateLimiter; key: string }[],
    now: number,
  ): Promise<RateLimitDenial | undefined> {
    for (const { limit, limiter, key } of list) {
      const verdict = await limiter.tryTake(key, now);
      if (!verdict.allowed && this.draw(limit.enforced)) return { limit, verdict };
    }
    return undefined;
  }

  /** True for a fraction `p` of calls (1: always, without drawing). */
  private draw(p: number): boolean {
    return p >= 1 || (p > 0 && this.deps.random() < p);
  }

  /** Limiters for the table's limits: the same limiter for an unchanged id, new ones otherwise. */
  private bind(table: RateLimitTable): void {
    this.bound = table;
    const limiters = new Map<CompiledRateLimit, RateLimiter>();
    const byId = new Map<string, RateLimiter>();
    for (const limit of [...table.limits, ...table.inbound]) {
      const limiter = byId.get(limit.id) ?? this.byId.get(limit.id) ?? this.create(limit);
      limiters.set(limit, limiter);
      byId.set(limit.id, limiter);
    }
    for (const [id, limiter] of this.byId) if (!byId.has(id)) void limiter.close();
    this.limiters = limiters;
    this.byId = byId;
  }

  private create(limit: CompiledRateLimit): RateLimiter {
    if (limit.scope === 'SHARED' && !this.closed) {
      const redis = this.deps.options.redis;
      if (redis) {
        this.store ??= new SharedStore(redis, this.deps.options.keyPrefix ?? 'sidecarless');
        const store = this.store;
        return new SharedLimiter(store, limit.id, limit.bucket, limit.maxKeys, {
          clock: this.deps.clock,
          timeoutMs: this.deps.options.redisTimeoutMs ?? 100,
          retryAfterMs: this.deps.options.redisRetryMs ?? 1000,
          onStateChange: (error) =>
            this.deps.onError(
              error
                ? new RateLimitStoreError(
                    limit.name,
                    `Redis is unreachable (${error.message}${store.lastError && store.lastError !== error ? `; last connection error: ${store.lastError.message}` : ''}); the limit is enforced per process until it answers again`,
                    { cause: error },
                  )
                : new RateLimitStoreError(limit.name, 'Redis answers again; the limit is shared again'),
            ),
        });
      }
      if (!this.warnedNoRedis.has(limit.id)) {
        this.warnedNoRedis.add(limit.id);
        this.deps.onError(
          new RateLimitStoreError(limit.name, 'scope SHARED needs Redis (createMesh option rateLimit.redis); the limit is enforced per process'),
        );
      }
    }
    return new LocalLimiter(limit.bucket, limit.maxKeys);
  }

  /**
   * Where the buckets of limit `id` live now: `redis`, `local-fallback` (Redis failing), `local`;
   * undefined before the limit's first request.
   */
  backendOf(id: string): 'local' | 'redis' | 'local-fallback' | undefined {
    const limiter = this.byId.get(id);
    if (!limiter) return undefined;
    if (limiter instanceof SharedLimiter) return limiter.degraded ? 'local-fallback' : 'redis';
    return 'local';
  }

  /** Releases every limiter and the Redis connection. */
  async close(): Promise<void> {
    this.closed = true;
    for (const limiter of this.byId.values()) await limiter.close();
    this.byId.clear();
    this.limiters.clear();
    await this.store?.close();
  }
}
