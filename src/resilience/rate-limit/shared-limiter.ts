import type Bottleneck from 'bottleneck';
import type { MeshClock } from '../../clock.js';
import type { RateLimiter, RateLimitVerdict } from './limiter.js';
import { LocalLimiter } from './local-limiter.js';
import type { SharedStore } from './shared-store.js';
import type { TokenBucketSpec } from './token-bucket.js';

/** How a SHARED limit behaves when Redis does not answer. */
export interface SharedLimiterOptions {
  readonly clock: MeshClock;
  /** How long a request waits for Redis before the local bucket decides. */
  readonly timeoutMs: number;
  /** After a failure, how long requests are decided locally before Redis is tried again. */
  readonly retryAfterMs: number;
  /** Redis failed (or stopped failing: `undefined`); reported once per change of state. */
  readonly onStateChange: (error: Error | undefined) => void;
}

class TimeoutError extends Error {}

/**
 * A limit shared by every replica through Redis. Each request waits for Redis (two round trips:
 * read the reservoir, which applies the fills due, then take a token with an atomic decrement,
 * given back if it went below zero); the request is held meanwhile, never failed for it. When
 * Redis errs or does not answer within `timeoutMs`, the limit falls back to a bucket of the same
 * size in this process for `retryAfterMs`, and the change is reported: the limit stays enforced,
 * per replica, rather than failing open or closed.
 */
export class SharedLimiter implements RateLimiter {
  /** One reservoir per key, least recently used first. */
  private readonly reservoirs = new Map<string, Promise<Bottleneck>>();
  private readonly fallback: LocalLimiter;
  private degradedUntil = -Infinity;
  private failing = false;

  constructor(
    private readonly store: SharedStore,
    /** Stable across replicas: the limit's id. */
    private readonly id: string,
    private readonly spec: TokenBucketSpec,
    private readonly maxKeys: number,
    private readonly options: SharedLimiterOptions,
  ) {
    this.fallback = new LocalLimiter(spec, maxKeys);
  }

  /** Whether Redis failed and the limit is enforced per process meanwhile. */
  get degraded(): boolean {
    return this.failing;
  }

  tryTake(key: string, now: number): RateLimitVerdict | Promise<RateLimitVerdict> {
    if (now < this.degradedUntil) return this.fallback.tryTake(key, now);
    return this.takeShared(key).then(
      (verdict) => {
        if (this.failing) {
          this.failing = false;
          this.options.onStateChange(undefined);
        }
        return verdict;
      },
      (error: unknown) => {
        const at = this.options.clock.now();
        this.degradedUntil = at + this.options.retryAfterMs;
        if (!this.failing) {
          this.failing = true;
          this.options.onStateChange(error instanceof Error ? error : new Error(String(error)));
        }
        return this.fallback.tryTake(key, at);
      },
    );
  }

  private async takeShared(key: string): Promise<RateLimitVerdict> {
    const limiter = await this.withTimeout(this.reservoir(key));
    const current = (await this.withTimeout(limiter.currentReservoir())) ?? 0;
    if (current < 1) return this.denied();
    const left = await this.withTimeout(limiter.incrementReservoir(-1));
    if (left < 0) {
      // Another replica took the last token first: give ours back.
      void limiter.incrementReservoir(1).catch(() => undefined);
      return this.denied();
    }
    // bottleneck does not say when the reservoir is next increased: at most one interval away.
    return { allowed: true, limit: this.spec.maxTokens, remaining: left, resetMs: this.spec.fillIntervalMs };
  }

  private denied(): RateLimitVerdict {
    return { allowed: false, limit: this.spec.maxTokens, remaining: 0, resetMs: this.spec.fillIntervalMs };
  }

  private reservoir(key: string): Promise<Bottleneck> {
    let limiter = this.reservoirs.get(key);
    if (limiter) {
      this.reservoirs.delete(key);
    } else {
      limiter = this.store.reservoir(key === '' ? this.id : `${this.id}|${key}`, this.spec);
      // A limiter that could not be made is made again next time.
      limiter.catch(() => this.reservoirs.get(key) === limiter && this.reservoirs.delete(key));
      if (this.reservoirs.size >= this.maxKeys) {
        const oldest = this.reservoirs.keys().next().value as string;
        const evicted = this.reservoirs.get(oldest);
        this.reservoirs.delete(oldest);
        void evicted?.then((l) => this.store.release(l)).catch(() => undefined);
      }
    }
    this.reservoirs.set(key, limiter);
    return limiter;
  }

  private withTimeout<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // A request waits on it: it keeps the process alive like the request's own timers.
      const cancel = this.options.clock.schedule(
        this.options.timeoutMs,
        () => reject(new TimeoutError(`Redis did not answer within ${this.options.timeoutMs} ms`)),
        'request',
      );
      work.then(
        (value) => {
          cancel();
          resolve(value);
        },
        (error: unknown) => {
          cancel();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  close(): void {
    for (const limiter of this.reservoirs.values()) void limiter.then((l) => this.store.release(l)).catch(() => undefined);
    this.reservoirs.clear();
    this.fallback.close();
  }
}
