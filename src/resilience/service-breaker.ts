import { EventEmitter } from 'node:events';
import type CircuitBreaker from 'opossum';
import type { CancelTimer, MeshClock } from '../clock.js';
import { repeat, systemClock } from '../clock.js';
import { lazyRequire } from '../lazy-require.js';
import type { BreakerState } from './events.js';
import type { AttemptOutcome } from './outcome.js';

/** What a breaker's fallback is told about the request it answers. */
export interface BreakerRequest {
  /** The destination service host (FQDN). */
  readonly host: string;
  readonly method: string;
  /** Path and query as sent. */
  readonly path: string;
}

/** The response a fallback gives instead of the upstream's. */
export interface BreakerFallbackResponse {
  /** Default 200. */
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string | string[]>>;
  readonly body?: string;
}

/**
 * A service-level circuit breaker configured in code (an addition to Istio, which has none). The
 * state machine is opossum's: closed until the failure share in the rolling window exceeds
 * `errorThresholdPercentage` (once the window holds `volumeThreshold` requests), then open
 * (requests fail fast) for `resetTimeout`, then half-open: one trial request goes through; its
 * success closes the breaker, its failure opens it again.
 */
export interface BreakerOptions {
  /** Failure percentage in the rolling window above which the breaker opens. Default 50 (opossum's). */
  readonly errorThresholdPercentage?: number;
  /** Milliseconds the breaker stays open before letting one trial through. Default 30000 (opossum's). */
  readonly resetTimeout?: number;
  /** Requests the rolling window must hold before the breaker may open. Default 0 (opossum's). */
  readonly volumeThreshold?: number;
  /** Length of the rolling window, milliseconds. Default 10000 (opossum's). */
  readonly rollingCountTimeout?: number;
  /** Buckets the window is divided into. Default 10 (opossum's). */
  readonly rollingCountBuckets?: number;
  /**
   * Which outcomes count as failures. Default: a 5xx response, or no response at all (connection
   * failure, reset, timeout). The request's final outcome is counted once, after any retries.
   */
  readonly isFailure?: (outcome: AttemptOutcome) => boolean;
  /**
   * Answers requests while the breaker is open. Without it they get 503 `circuit breaker open for
   * <host>`. Either answer carries `x-sidecarless-response-flags: UO`.
   */
  readonly fallback?: (request: BreakerRequest) => BreakerFallbackResponse | Promise<BreakerFallbackResponse>;
}

const defaultIsFailure = (outcome: AttemptOutcome): boolean => outcome.failure !== undefined || outcome.status >= 500;

/** The upstream outcome a failed request is counted with inside opossum. */
class FailedOutcome extends Error {
  constructor(readonly outcome: AttemptOutcome) {
    super(outcome.failure ?? `upstream answered ${outcome.status}`);
  }
}

/**
 * One admitted request; settle it exactly once with how the request ended. A request admitted
 * while the breaker was closed is counted by {@link ServiceBreaker.record}; the half-open trial
 * went through `fire()` and settles the promise opossum waits on.
 */
export class BreakerTicket {
  private settled = false;
  constructor(
    private readonly breaker: ServiceBreaker,
    private readonly resolve: (() => void) | undefined,
    private readonly reject: ((error: Error) => void) | undefined,
  ) {}

  /**
   * `undefined`: the caller gave up, which is not the upstream's failure (opossum counts it a
   * success, so a half-open trial the caller abandons closes the breaker).
   */
  settle(outcome: AttemptOutcome | undefined): void {
    if (this.settled) return;
    this.settled = true;
    const failed = outcome !== undefined && this.breaker.isFailure(outcome);
    if (this.reject === undefined) this.breaker.record(failed ? outcome : undefined);
    else if (failed) this.reject(new FailedOutcome(outcome));
    else this.resolve?.();
  }

  /**
   * The request was never sent (the caller's own mistake): while the breaker is closed it counts
   * for nothing. A half-open trial cannot be handed back to opossum unused; it counts as a
   * success, so that a caller's mistake never holds the breaker open.
   */
  release(): void {
    if (this.settled) return;
    this.settled = true;
    if (this.reject === undefined) this.breaker.unfire();
    else this.resolve?.();
  }
}

const ignore = (): void => undefined;
/** opossum, loaded with the first breaker: an application without breakers never loads it. */
const loadOpossum = lazyRequire<typeof CircuitBreaker>('opossum');
const noArgs: [] = [];

/**
 * A service's breaker over opossum. The data path asks {@link ServiceBreaker.allow} before it
 * sends a request and settles the ticket when the request ends; nothing here runs for services
 * without a breaker.
 *
 * opossum's `fire()` costs about 1 µs a call (a promise chain, a semaphore promise, an arguments
 * copy, and a latency kept per request even with percentiles off). While the breaker is closed,
 * which is nearly always, a call skips it: it counts `fires` and `successes` in the newest bucket
 * of opossum's own rolling window (the Status that opossum sums for its decisions), and a failure
 * goes through opossum's `failure` event and opening rule. opossum keeps the states, the reset
 * timer, the half-open trial, the window and its events; open and half-open go through `fire()`.
 * See docs/decisions.md, "The service breaker's per-call path".
 */
export class ServiceBreaker {
  private readonly circuit: CircuitBreaker<[], void>;
  /** @internal */
  readonly isFailure: (outcome: AttemptOutcome) => boolean;
  private captured: BreakerTicket | undefined;
  /** Rotates opossum's window on the mesh clock, so that {@link bucket} is always its newest bucket. */
  private readonly rotator = new EventEmitter();
  private readonly stopRotation: CancelTimer;
  /** The window's newest bucket, which opossum's Status counts into and sums for its stats. */
  private bucket: CircuitBreaker.Bucket;
  private readonly errorThresholdPercentage: number;

  constructor(
    readonly host: string,
    readonly options: BreakerOptions,
    onState: (state: BreakerState) => void,
    clock: MeshClock = systemClock,
  ) {
    this.isFailure = options.isFailure ?? defaultIsFailure;
    this.errorThresholdPercentage = options.errorThresholdPercentage ?? 50;
    const rollingCountTimeout = options.rollingCountTimeout ?? 10_000;
    const rollingCountBuckets = options.rollingCountBuckets ?? 10;
    this.circuit = new (loadOpossum())<[], void>(this.action, {
      name: host,
      // The request's own timeouts apply; opossum's would count a slow success as a failure.
      timeout: false,
      errorThresholdPercentage: this.errorThresholdPercentage,
      resetTimeout: options.resetTimeout ?? 30_000,
      volumeThreshold: options.volumeThreshold ?? 0,
      rollingCountTimeout,
      rollingCountBuckets,
      // Percentiles would sort every latency in the window on each failure; snapshots add a timer.
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: this.rotator,
    });
    this.bucket = this.newestBucket();
    // The period opossum's own rotation timer would have.
    this.stopRotation = repeat(clock, Math.floor(rollingCountTimeout / rollingCountBuckets), this.rotate);
    this.circuit.on('open', () => onState('open'));
    this.circuit.on('halfOpen', () => onState('half-open'));
    this.circuit.on('close', () => onState('closed'));
  }

  get state(): BreakerState {
    return this.circuit.opened ? 'open' : this.circuit.halfOpen ? 'half-open' : 'closed';
  }

  /**
   * A ticket when the request may go (settle it when it ends), or undefined when the breaker is
   * open, or half-open with its trial request still under way.
   */
  allow(): BreakerTicket | undefined {
    const circuit = this.circuit;
    if (circuit.closed) {
      // What call() counts when closed (its 'fire' event); no cache, coalescing, timeout or
      // capacity are configured, so nothing else of call() applies.
      this.bucket.fires++;
      return new BreakerTicket(this, undefined, undefined);
    }
    this.captured = undefined;
    // opossum runs the action synchronously when it admits the call; a refusal rejects at once.
    circuit.fire().catch(ignore);
    const ticket = this.captured;
    this.captured = undefined;
    return ticket;
  }

  /**
   * Counts a request admitted while closed, as opossum's `call()` would have on its promise
   * settling: `success`, or `failure` and then opossum's rule for opening (lib/circuit.js, fail()).
   * @internal
   */
  record(failure: AttemptOutcome | undefined): void {
    const circuit = this.circuit;
    if (failure === undefined) {
      // opossum's success listener closes a half-open breaker. Otherwise the event would only
      // count, and keep a latency that nothing reads with percentiles off.
      if (circuit.halfOpen) circuit.emit('success', undefined, 0);
      else this.bucket.successes++;
      return;
    }
    circuit.emit('failure', new FailedOutcome(failure), 0, noArgs);
    if (circuit.warmUp) return;
    const stats = circuit.stats;
    if (stats.fires < circuit.volumeThreshold && !circuit.halfOpen) return;
    const errorRate = (stats.failures / stats.fires) * 100;
    if (errorRate > this.errorThresholdPercentage || circuit.halfOpen) circuit.open();
  }

  /** Takes back the `fires` count of a closed-breaker ticket released unused. @internal */
  unfire(): void {
    if (this.bucket.fires > 0) this.bucket.fires--;
  }

  /** Stops opossum's timers. The breaker is not asked again afterwards (it would refuse everything). */
  shutdown(): void {
    this.stopRotation();
    this.circuit.shutdown();
  }

  private readonly rotate = (): void => {
    this.rotator.emit('rotate');
    this.bucket = this.newestBucket();
  };

  private newestBucket(): CircuitBreaker.Bucket {
    const newest = this.circuit.status.window[0];
    if (newest === undefined) throw new Error(`breaker of ${this.host}: opossum's rolling window has no bucket`);
    return newest;
  }

  private readonly action = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      this.captured = new BreakerTicket(this, resolve, reject);
    });
}
