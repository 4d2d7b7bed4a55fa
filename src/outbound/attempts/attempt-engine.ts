import type { Host } from '../../balancer/index.js';
import { onDiscard, onFinish, onStart } from '../../balancer/index.js';
import type { CancelTimer, MeshClock, RandomSource } from '../../clock.js';
import type { Cluster } from '../../cluster/cluster.js';
import type { OverflowError } from '../../resilience/errors.js';
import type { LocalOriginFailure } from '../../resilience/outcome.js';
import { retriableFailure } from '../../resilience/retry-on.js';
import type { RetryPolicy } from '../../resilience/retry-policy.js';
import { backoffDelayMs } from '../../resilience/retry-policy.js';
import { PerTryTimeoutError } from '../errors.js';
import type { EngineAttempt } from './attempt.js';

/** What the engine needs to know of a request's attempts, decided before the first is sent. */
export interface AttemptPolicy {
  readonly clock: MeshClock;
  readonly random: RandomSource;
  /** undefined: retries off (`attempts: 0`). */
  readonly retry: RetryPolicy | undefined;
  /** Consistent-hash key for host selection. */
  readonly hash: number | undefined;
  /** Avoid hosts already tried (Envoy's previous_hosts); decided with the cluster's hash policy. */
  readonly avoidPreviousHosts: boolean;
  /** Hedging (our addition): send a backup attempt after this many ms without a winner; 0 off. */
  readonly hedgeAfterMs: number;
}

/** Envoy's response flags the engine raises; the protocol side records them. */
export type EngineFlag = 'URX';

/**
 * The policy across one request's attempts, whatever protocol carries them: Envoy's router for
 * one stream. It owns retries left and their admission by the cluster's limits (maxRetries,
 * retry budget), Envoy's back-off, the hedge timer, per-try timers, host choice away from the
 * hosts and localities already tried, and the accounting of each attempt (host statistics,
 * outlier detection, connection-pool limits, a retry admitted that never went out).
 *
 * The protocol extends it (one object per request, nothing more allocated) and says how an
 * attempt is made, sent and cut, and how the caller is answered when no attempt can be made.
 * Whether an answer is retriable is the protocol's call; it then asks {@link retryAfter}.
 */
export abstract class AttemptEngine<A extends EngineAttempt> {
  /** The attempt whose response the caller gets. */
  winner: A | undefined = undefined;
  /**
   * Attempts sent, oldest first, linked through `nextAttempt`: no array per request. An array
   * literal per request is an allocation site V8 may decide to pretenure; an old-space array
   * holding the attempt keeps its request's whole object graph alive through every scavenge.
   */
  protected firstAttempt: A | undefined = undefined;
  private lastAttempt: A | undefined = undefined;
  protected attemptCount = 0;
  protected retriesUsed = 0;
  /** The request is decided: nothing new starts. */
  protected done = false;
  protected cancelBackoff: CancelTimer | undefined = undefined;
  private cancelHedge: CancelTimer | undefined = undefined;
  /** How the last attempt without a response failed. */
  protected lastFailure: LocalOriginFailure | undefined = undefined;

  constructor(
    /** Attempts go to this cluster's endpoints; undefined: the protocol sends them elsewhere (pass-through). */
    protected cluster: Cluster | undefined,
    protected policy: AttemptPolicy,
  ) {}

  // ---- what the protocol provides ----

  /** A new attempt to `host` (not sent yet). */
  protected abstract createAttempt(host: Host | undefined, retry: boolean, hedge: boolean): A;
  /** Sends it; a synchronous failure is the protocol's to handle as any other. */
  protected abstract transmit(attempt: A): void;
  /** Cuts a running attempt (`reason` says why: abandoned, or its per-try timeout). */
  protected abstract abortAttempt(attempt: A, reason: Error): void;
  /** The cluster has no host for an attempt: the caller is answered (Envoy's UH). */
  protected abstract noHealthyUpstream(cluster: Cluster): void;
  /** The cluster's connection-pool limits refused the first attempt (Envoy's UO). */
  protected abstract overflowed(overflow: OverflowError): void;
  /** The last attempt's per-try timeout passed with nothing else in flight: the caller is answered. */
  protected abstract timedOut(error: PerTryTimeoutError): void;
  /** An attempt (not the winner) was given up at its per-try timeout: its trace says so. */
  protected abstract attemptTimedOut(attempt: A, error: PerTryTimeoutError): void;
  /** The mesh is closing: no retry or hedge starts. */
  protected abstract closing(): boolean;
  /** The request can be sent again (its body or messages were kept) after an attempt ended for `reason`. */
  protected abstract canResend(reason: string): boolean;
  /** A retry was decided (its back-off starts). */
  protected abstract retrying(reason: string): void;
  /** A hedge is sent. */
  protected abstract hedging(): void;
  /** A response flag the engine raised. */
  protected abstract flag(flag: EngineFlag): void;
  /** Whether a hedge may go out now, over what the policy allows (a gRPC call's request must be complete). */
  protected hedgeable(): boolean {
    return true;
  }

  // ---- attempts ----

  /** Picks a host and sends an attempt; answers the caller when no attempt can be made. */
  protected sendAttempt(retry: boolean, hedge: boolean): void {
    if (this.done) return;
    const cluster = this.cluster;
    let host: Host | undefined;
    if (cluster) {
      host = this.pickHost(cluster);
      if (!host) {
        // A retry that finds no host too (the endpoints left, or were ejected, meanwhile): Envoy's
        // router answers it as a first attempt, not with the failure that caused the retry.
        this.noHealthyUpstream(cluster);
        return;
      }
      if (!retry) {
        // Retries were admitted when they were decided (see retryAfter).
        const overflow = cluster.limits.admit(false);
        if (overflow) {
          this.overflowed(overflow);
          return;
        }
      }
    }
    const attempt = this.createAttempt(host, retry, hedge);
    if (this.lastAttempt === undefined) this.firstAttempt = attempt;
    else this.lastAttempt.nextAttempt = attempt;
    this.lastAttempt = attempt;
    this.attemptCount++;
    if (host) onStart(host);
    const perTry = this.policy.retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) attempt.cancelTimer = this.policy.clock.schedule(perTry, () => this.onPerTryTimeout(attempt, perTry), 'request');
    this.armHedge();
    this.transmit(attempt);
  }

  private pickHost(cluster: Cluster): Host | undefined {
    const hash = this.policy.hash;
    const first = this.firstAttempt;
    if (first === undefined) return cluster.pick(hash);
    let avoid: Set<number> | undefined;
    if (this.policy.retry?.retryRemoteLocalities) {
      // Envoy's previous_priorities: retries leave the priorities (localities) already tried.
      avoid = new Set();
      for (let a: EngineAttempt | undefined = first; a; a = a.nextAttempt) {
        const p = a.host ? cluster.priorityOf(a.host) : undefined;
        if (p !== undefined) avoid.add(p);
      }
    }
    if (!this.policy.avoidPreviousHosts) return cluster.pick(hash, undefined, avoid);
    return cluster.pick(
      hash,
      (host) => {
        for (let a: EngineAttempt | undefined = first; a; a = a.nextAttempt) if (a.host === host) return true;
        return false;
      },
      avoid,
    );
  }

  /** The attempt reached its host: active, no longer pending, for the cluster's limits. */
  protected markStarted(attempt: A): void {
    attempt.started = true;
    this.cluster?.limits.started();
  }

  /** `attempt`'s response is the caller's: no hedge from now on, the others are given up. */
  protected win(attempt: A): void {
    this.winner = attempt;
    this.cancelHedgeTimer();
    this.abandonAllBut(attempt);
  }

  /**
   * Decides a retry after `attempt` failed or answered retriably: retries left, the request still
   * sendable again, the retry admitted by the cluster's limits (maxRetries, retry budget). When
   * another attempt is still in flight (a hedge) it is waited for instead. True when the caller
   * is not to be answered from `attempt`.
   */
  protected retryAfter(attempt: A, reason: string): boolean {
    if (this.inFlight(attempt) > 0) return true;
    // Closing: nothing new starts; the caller gets this answer as it is.
    if (this.closing()) return false;
    const policy = this.policy.retry!;
    if (this.retriesUsed >= policy.numRetries) {
      if (policy.numRetries > 0) this.flag('URX');
      return false;
    }
    if (!this.canResend(reason)) return false;
    const cluster = this.cluster;
    if (cluster && cluster.limits.admit(true)) return false;
    this.retriesUsed++;
    this.retrying(reason);
    const delay = backoffDelayMs(policy, this.retriesUsed, this.policy.random);
    this.cancelBackoff = this.policy.clock.schedule(
      delay,
      () => {
        // Cancelled meanwhile: stopAttempts() freed what the retry was admitted for.
        if (this.cancelBackoff === undefined) return;
        this.cancelBackoff = undefined;
        this.sendAttempt(true, false);
      },
      'request',
    );
    return true;
  }

  /** Our addition: a backup attempt when no attempt has won yet (idempotent requests only). */
  private armHedge(): void {
    const after = this.policy.hedgeAfterMs;
    if (after <= 0 || this.cancelHedge || this.winner || this.closing()) return;
    const policy = this.policy.retry;
    if (!policy || this.retriesUsed >= policy.numRetries) return;
    this.cancelHedge = this.policy.clock.schedule(
      after,
      () => {
        this.cancelHedge = undefined;
        if (this.done || this.winner || this.closing() || this.retriesUsed >= policy.numRetries || !this.hedgeable()) return;
        const cluster = this.cluster;
        if (cluster && cluster.limits.admit(true)) return;
        this.retriesUsed++;
        this.hedging();
        this.sendAttempt(true, true);
      },
      'request',
    );
  }

  protected cancelHedgeTimer(): void {
    this.cancelHedge?.();
    this.cancelHedge = undefined;
  }

  private onPerTryTimeout(attempt: A, timeoutMs: number): void {
    attempt.cancelTimer = undefined;
    if (attempt.ended || this.done) return;
    if (this.winner === attempt) {
      // The response is the caller's already: Envoy resets the stream.
      this.abortAttempt(attempt, new PerTryTimeoutError(timeoutMs, true));
      return;
    }
    const error = new PerTryTimeoutError(timeoutMs, false);
    this.attemptTimedOut(attempt, error);
    attempt.abandoned = true;
    this.abortAttempt(attempt, error);
    // Counted at once: an attempt still queued may never start.
    this.endAttempt(attempt, false);
    // An attempt still waiting for a connection never reached its host: nothing to report on it.
    if (attempt.host && attempt.started) this.cluster?.report(attempt.host, { status: 0, failure: 'timeout' });
    this.lastFailure = 'timeout';
    const policy = this.policy.retry;
    if (policy !== undefined && retriableFailure(policy.retryOn, 'timeout', attempt.started) && this.retryAfter(attempt, 'timeout')) return;
    if (this.inFlight() > 0) return;
    this.timedOut(error);
  }

  /** Attempts still running whose result matters, `except` aside. */
  protected inFlight(except?: A): number {
    let n = 0;
    for (let a = this.firstAttempt; a; a = a.nextAttempt as A | undefined) {
      if (a !== except && !a.ended && !a.abandoned) n++;
    }
    return n;
  }

  /** Gives up on every attempt but `keep`: cut if running, dropped when they start. */
  protected abandonAllBut(keep: A | undefined): void {
    for (let a = this.firstAttempt; a; a = a.nextAttempt as A | undefined) {
      if (a === keep || a.ended || a.abandoned) continue;
      a.abandoned = true;
      this.abortAttempt(a, ABANDONED);
    }
  }

  /**
   * Counts an attempt off its host and the cluster's limits, once; `measured` false: no latency
   * sample (the attempt says nothing about the host). True the first time.
   */
  protected endAttempt(attempt: A, ok: boolean, measured = true): boolean {
    if (attempt.ended) return false;
    attempt.ended = true;
    attempt.cancelTimer?.();
    attempt.cancelTimer = undefined;
    const host = attempt.host;
    if (host) {
      if (measured) {
        const now = this.policy.clock.now();
        onFinish(host, now - attempt.startedAt, ok, now);
      } else {
        onDiscard(host);
      }
    }
    this.cluster?.limits.finished(attempt.started, attempt.retry);
    return true;
  }

  /** The request is decided: no retry or hedge goes out; a retry admitted and waiting is freed. */
  protected stopAttempts(): void {
    this.done = true;
    const backoff = this.cancelBackoff;
    if (backoff !== undefined) {
      backoff();
      this.cancelBackoff = undefined;
      // The retry it was waiting for never goes out: free what it was admitted for.
      this.cluster?.limits.finished(false, true);
    }
    this.cancelHedgeTimer();
  }

  /**
   * The caller has its whole answer: the attempts are let go. What still points at the request
   * afterwards (its response body's listeners, which V8 may have placed in old space, where a
   * scavenge treats them as live) then holds no transport object of an attempt.
   */
  protected forgetAttempts(): void {
    this.firstAttempt = undefined;
    this.lastAttempt = undefined;
    this.winner = undefined;
  }
}

/** Stands for "this attempt's result is not needed"; never reaches the caller. */
export const ABANDONED = new Error('attempt abandoned by the mesh');
