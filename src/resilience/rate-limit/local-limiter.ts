import type { RateLimiter, RateLimitVerdict } from './limiter.js';
import type { TokenBucketSpec } from './token-bucket.js';
import { TokenBucket } from './token-bucket.js';

/** Keys a keyed limit remembers by default before it forgets the least recently used. */
export const DEFAULT_MAX_KEYS = 10_000;

/**
 * A limit enforced in this process: one token bucket per key, created full on first use. Keys are
 * bounded: past `maxKeys` the least recently used key's bucket is dropped (the key starts again
 * with a full bucket if it comes back), so a high-cardinality key such as a user id cannot grow
 * memory without bound.
 */
export class LocalLimiter implements RateLimiter {
  /** Map order is use order: a hit moves the key to the end, eviction takes the first. */
  private readonly buckets = new Map<string, TokenBucket>();
  private single: TokenBucket | undefined;

  constructor(
    readonly spec: TokenBucketSpec,
    private readonly maxKeys = DEFAULT_MAX_KEYS,
  ) {}

  tryTake(key: string, now: number): RateLimitVerdict {
    const bucket = this.bucket(key, now);
    const allowed = bucket.tryTake(now);
    return { allowed, limit: this.spec.maxTokens, remaining: bucket.remaining(now), resetMs: bucket.msUntilFill(now) };
  }

  /** Keys with a bucket now (at most `maxKeys`). */
  get size(): number {
    return this.buckets.size + (this.single ? 1 : 0);
  }

  close(): void {
    this.buckets.clear();
    this.single = undefined;
  }

  private bucket(key: string, now: number): TokenBucket {
    if (key === '') return (this.single ??= new TokenBucket(this.spec, now));
    const buckets = this.buckets;
    let bucket = buckets.get(key);
    if (bucket) {
      buckets.delete(key);
    } else {
      bucket = new TokenBucket(this.spec, now);
      if (buckets.size >= this.maxKeys) buckets.delete(buckets.keys().next().value as string);
    }
    buckets.set(key, bucket);
    return bucket;
  }
}
