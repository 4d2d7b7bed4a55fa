import type { Clock } from '../clock.js';
import type { LimitsPolicy } from './connection-pool-policy.js';
import { OverflowError } from './errors.js';
import { RequestWindow } from './request-window.js';

/**
 * Admission of attempts to one cluster under its DestinationRule `connectionPool` limits (Envoy's
 * circuit-breaker thresholds). The data path calls, per attempt: `admit` before dispatching (an
 * error means: do not send, answer 503 overflow), `started` when undici hands the request a
 * connection (it stops being pending), and `finished` once when it ends, however it ends.
 */
export interface ConnectionLimits {
  admit(retry: boolean): OverflowError | undefined;
  started(): void;
  finished(started: boolean, retry: boolean): void;
}

/** No limits configured: admission costs nothing. */
export const UNLIMITED: ConnectionLimits = {
  admit: () => undefined,
  started: () => undefined,
  finished: () => undefined,
};

/**
 * Envoy's cluster circuit breakers for one cluster: pending requests (`http1MaxPendingRequests`),
 * outstanding requests (`http2MaxRequests`), active retries (`maxRetries`, or the retry budget
 * when one is set). Every check happens at admission, so an overflow never touches the network:
 *
 * - A request is pending from admission until undici gives it a connection; Envoy counts it
 *   pending only while it waits for one, which is the same thing when a connection is free
 *   (undici starts the request before `dispatch` returns).
 * - Outstanding (pending + active) requests may not reach `http2MaxRequests`. Envoy queues such a
 *   request and fails it when it would become active over the limit; failing it at once is the
 *   same answer without the wait.
 * - A retry (or hedge) is active from admission until it finishes; with a budget the allowance is
 *   `max(percent × (active + pending), minRetryConcurrency)`, or with `budgetInterval` the
 *   percentage of requests started within that window.
 *
 * Counters survive a policy change, so requests in flight count off correctly.
 */
export class ClusterLimits implements ConnectionLimits {
  private pending = 0;
  private active = 0;
  private retries = 0;
  private window: RequestWindow | undefined;
  private slots: number | undefined;

  constructor(
    private readonly cluster: string,
    private policy: LimitsPolicy,
    private readonly clock: Clock,
  ) {
    this.window = this.windowFor(policy);
  }

  setPolicy(policy: LimitsPolicy): void {
    this.policy = policy;
    const intervalMs = policy.budget?.intervalMs ?? 0;
    if (intervalMs !== (this.window?.intervalMs ?? 0)) this.window = this.windowFor(policy);
  }

  /**
   * HTTP/1.1 under `tcp.maxConnections`: one request per connection, so that many requests hold a
   * connection (open or opening) and only those beyond them wait, pending. Envoy also counts a
   * request pending while its own new connection opens; there a connect is quicker than the
   * caller's next request, in process it is not, and counting it made a caller that overflows
   * call again and overflow again until the connect completed (Istio's circuit-breaking task with
   * `-c 2` lost 19 of 20 calls instead of 1). Undefined: every request not started is pending.
   */
  setConnectionSlots(slots: number | undefined): void {
    this.slots = slots;
  }

  admit(retry: boolean): OverflowError | undefined {
    const policy = this.policy;
    if (retry) {
      const budget = policy.budget;
      if (budget !== undefined) {
        const base = this.window !== undefined ? this.window.count(this.clock.now()) : this.active + this.pending;
        const allowed = Math.max(Math.floor((budget.percent / 100) * base), budget.minConcurrency);
        if (this.retries >= allowed) return new OverflowError(this.cluster, 'retryBudget', allowed);
      } else if (this.retries >= policy.maxRetries) {
        return new OverflowError(this.cluster, 'connectionPool.http.maxRetries', policy.maxRetries);
      }
    }
    // With connection slots, what waits is what exceeds them; otherwise what has not started yet.
    const waiting = this.slots === undefined ? this.pending : this.pending + this.active - this.slots;
    if (waiting >= policy.maxPending) {
      return new OverflowError(this.cluster, 'connectionPool.http.http1MaxPendingRequests', policy.maxPending);
    }
    if (this.pending + this.active >= policy.maxRequests) {
      return new OverflowError(this.cluster, 'connectionPool.http.http2MaxRequests', policy.maxRequests);
    }
    this.pending++;
    if (retry) this.retries++;
    return undefined;
  }

  started(): void {
    if (this.pending > 0) this.pending--;
    this.active++;
    this.window?.add(this.clock.now());
  }

  finished(started: boolean, retry: boolean): void {
    if (started) {
      if (this.active > 0) this.active--;
    } else if (this.pending > 0) {
      this.pending--;
    }
    if (retry && this.retries > 0) this.retries--;
  }

  /** Pending, active and retrying attempts now (for tests and diagnostics). */
  get counts(): { readonly pending: number; readonly active: number; readonly retries: number } {
    return { pending: this.pending, active: this.active, retries: this.retries };
  }

  private windowFor(policy: LimitsPolicy): RequestWindow | undefined {
    const intervalMs = policy.budget?.intervalMs ?? 0;
    return intervalMs > 0 ? new RequestWindow(intervalMs) : undefined;
  }
}
