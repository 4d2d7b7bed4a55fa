/**
 * What a limiter answers for one request. No HTTP in it: the outbound data path turns a refusal
 * into a 429 or a `RateLimitedError`, and an inbound server can turn it into whatever it answers.
 */
export interface RateLimitVerdict {
  readonly allowed: boolean;
  /** The bucket's capacity (`x-ratelimit-limit`). */
  readonly limit: number;
  /** Tokens left once this request took its own (`x-ratelimit-remaining`). */
  readonly remaining: number;
  /** Milliseconds until the bucket is next filled (`x-ratelimit-reset`, `retry-after`). */
  readonly resetMs: number;
}

/**
 * One limit's buckets: one per key. A local limiter answers at once; a shared one (Redis) answers
 * with a promise.
 */
export interface RateLimiter {
  /** Takes one token from the bucket of `key` (`''` when the limit is not keyed). */
  tryTake(key: string, now: number): RateLimitVerdict | Promise<RateLimitVerdict>;
  /** Releases what the limiter holds (timers, connections). */
  close(): Promise<void> | void;
}
