/** A token bucket's settings, in Envoy's terms (`envoy.type.v3.TokenBucket`). */
export interface TokenBucketSpec {
  /** Capacity, and what the bucket holds when it is created. At least 1. */
  readonly maxTokens: number;
  /** Tokens added every fill interval (Envoy's default: 1). */
  readonly tokensPerFill: number;
  /** Milliseconds between fills. */
  readonly fillIntervalMs: number;
}

/**
 * Envoy's local rate-limit token bucket: it starts full with `maxTokens`; every `fillIntervalMs`
 * it gains `tokensPerFill`, capped at `maxTokens`; each request takes one token. Envoy refills on
 * a timer; here the fills that a timer started with the bucket would have made are counted when
 * the bucket is next touched, which gives the same tokens at every instant without a timer.
 * Time is passed in (milliseconds from the mesh clock), so tests drive it.
 */
export class TokenBucket {
  private tokens: number;
  /** When the last fill happened (or the bucket was created): fills fall on this phase. */
  private filledAt: number;

  constructor(
    private readonly spec: TokenBucketSpec,
    now: number,
  ) {
    this.tokens = spec.maxTokens;
    this.filledAt = now;
  }

  /** Takes one token if there is one. */
  tryTake(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Tokens left at `now`. */
  remaining(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Milliseconds from `now` until the next fill. */
  msUntilFill(now: number): number {
    this.refill(now);
    return this.filledAt + this.spec.fillIntervalMs - now;
  }

  private refill(now: number): void {
    const interval = this.spec.fillIntervalMs;
    const elapsed = now - this.filledAt;
    if (elapsed < interval) return;
    const fills = Math.floor(elapsed / interval);
    this.filledAt += fills * interval;
    if (this.tokens < this.spec.maxTokens) {
      this.tokens = Math.min(this.spec.maxTokens, this.tokens + fills * this.spec.tokensPerFill);
    }
  }
}
