import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { OutboundRequest, RequestController, ResponseHandler, Upstream } from '../request-protocol.js';
import type { Host } from '../balancer/index.js';
import { onDiscard, onFinish, onStart } from '../balancer/index.js';
import type { MeshClock, RandomSource } from '../clock.js';
import type { Cluster } from '../cluster/cluster.js';
import type { OverflowError } from '../resilience/errors.js';
import type { AttemptOutcome, LocalOriginFailure } from '../resilience/outcome.js';
import { classifyFailure, isCallerAbort, isInvalidArgument } from '../resilience/outcome.js';
import type { BreakerTicket } from '../resilience/service-breaker.js';
import { retriableFailure, retriableResponse } from '../resilience/retry-on.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import { backoffDelayMs } from '../resilience/retry-policy.js';
import type { HeaderOps } from '../routing/route-actions.js';
import { applyHeaderOps } from '../routing/route-actions.js';
import { MeshClosedError } from '../errors.js';
import { invalidRequest } from './caller-errors.js';
import type { InFlight, InFlightItem } from './in-flight.js';
import { DeadlineExceededError, PerTryTimeoutError, RouteTimeoutError } from './errors.js';
import { deliverLocalResponse, LocalController } from './local-reply.js';
import { toRawHeaders } from './raw-headers.js';
import type { ReplayableBody } from '../transport/replayable-body.js';
import type { AttemptObserver, RequestObserver } from './observer.js';
import { AttemptEnd } from '../telemetry/attempt-trace.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';

const NO_OPS: readonly HeaderOps[] = [];
const NO_NAMES: readonly string[] = [];

/** Everything one request's attempts share, decided before the first is sent. */
export interface UpstreamRequestInit {
  readonly clock: MeshClock;
  readonly random: RandomSource;
  /** undefined: retries off (`attempts: 0`). */
  readonly retry: RetryPolicy | undefined;
  /** Route timeout, already capped by a propagated deadline; 0 for none. */
  readonly timeoutMs: number;
  /** The timeout came from the deadline, not the route: report it as such. */
  readonly deadlineBound: boolean;
  readonly responseOps: readonly HeaderOps[] | undefined;
  readonly setCookie: string | undefined;
  /** Consistent-hash key for host selection. */
  readonly hash: number | undefined;
  /** Avoid hosts already tried (Envoy's previous_hosts); decided with the cluster's hash policy. */
  readonly avoidPreviousHosts: boolean;
  /** Hedging (our addition): send a backup attempt after this many ms without a response; 0 off. */
  readonly hedgeAfterMs: number;
  /** Response header names whose presence makes a response retriable (`retriable-headers`). */
  readonly retriableHeaderNames: readonly string[] | undefined;
  /** A streamed body recorded for replay; undefined when the body is sent as is. */
  readonly body: ReplayableBody | undefined;
  /** The service breaker's admission of this request, settled with how the request ended. */
  readonly ticket: BreakerTicket | undefined;
  /** What the attempts report to (telemetry, when anything is recorded). */
  readonly observer: RequestObserver;
  /** The URL is `https://`: attempts originate TLS even where the DestinationRule asks for none. */
  readonly urlTls?: boolean;
  /** The dispatcher's requests in flight, which close() drains; the request is listed until it ends. */
  readonly live?: InFlight | undefined;
  /** A mirrored copy: its span is the primary request's mirror span (linked to the caller's), not an attempt of its own. */
  readonly mirrorOf?: { readonly observer: RequestObserver; readonly host: string } | undefined;
}

/**
 * One attempt: the handler undici calls for it. Thin, it hands everything to its request, which
 * owns the policy (which response wins, whether to retry).
 */
class Attempt implements ResponseHandler {
  controller: RequestController | undefined;
  /** undici handed the request a connection (it is no longer pending). */
  started = false;
  /** Response headers arrived. */
  responded = false;
  /** Ended (response complete, failed, or given up on): nothing more is counted for it. */
  ended = false;
  /** Its result no longer matters (a hedge lost, a retriable answer dropped, a timeout). */
  abandoned = false;
  /** An abandoned retriable answer whose small body is read to its end to keep the connection. */
  draining = false;
  cancelTimer: (() => void) | undefined;
  readonly startedAt: number;
  /** Its span and duration sample, when telemetry records anything. */
  trace: AttemptObserver | undefined;

  constructor(
    readonly request: UpstreamRequest,
    readonly host: Host | undefined,
    readonly retry: boolean,
  ) {
    this.startedAt = request.init.clock.now();
  }

  onRequestStart(controller: RequestController): void {
    this.controller = controller;
    this.request.attemptStarted(this, controller);
  }

  onRequestUpgrade(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.request.attemptUpgraded(this, controller, statusCode, headers, socket);
  }

  onResponseStart(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.responded = true;
    this.request.attemptResponded(this, controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: RequestController, chunk: Buffer): void {
    if (this.request.winner === this) this.request.deliverData(controller, chunk);
  }

  onResponseEnd(controller: RequestController, trailers: IncomingHttpHeaders): void {
    this.request.attemptEnded(this, controller, trailers);
  }

  onResponseError(_controller: RequestController, error: Error): void {
    this.request.attemptFailed(this, error);
  }
}

/**
 * One request through the mesh to its destination, across however many attempts it takes: Envoy's
 * router for one stream. It owns the route timeout (all attempts), the per-try timeout, the retry
 * decision on each response and failure, back-off, host selection away from hosts already tried,
 * hedged attempts, and connection-pool admission; and it is the controller the caller's handler
 * sees, so the caller can pause, resume or abort whichever attempt is current.
 *
 * A response is passed on once it is known to be final: the headers of a retriable response are
 * never shown to the caller while a retry is still possible.
 */
export class UpstreamRequest implements InFlightItem, RequestController {
  // InFlightItem: listed in its dispatcher's requests in flight from start to finish.
  prevLive: InFlightItem | undefined = undefined;
  nextLive: InFlightItem | undefined = undefined;
  listed = false;
  // DispatchController, as the caller sees it.
  aborted = false;
  paused = false;
  reason: Error | null = null;
  rawHeaders: Buffer[] | string[] | IncomingHttpHeaders | null = null;
  rawTrailers: Buffer[] | string[] | IncomingHttpHeaders | null = null;

  /** The attempt whose response the caller gets. */
  winner: Attempt | undefined;
  /** Attempts sent, oldest first; most requests make one, so the array is made for it. */
  private attempts: Attempt[] | readonly Attempt[] = NO_ATTEMPTS;
  private retriesUsed = 0;
  private winnerStatus = 0;
  private done = false;
  private cancelRouteTimer: (() => void) | undefined;
  private cancelBackoff: (() => void) | undefined;
  private cancelHedge: (() => void) | undefined;
  /** How the last attempt without a response failed: the outcome and flag if the request fails. */
  private lastFailure: LocalOriginFailure | undefined;

  constructor(
    private readonly handler: ResponseHandler,
    /** The request as every attempt sends it (a pass-through one with its origin set). */
    private readonly opts: OutboundRequest,
    /** Attempts go to this cluster's endpoints; or, when undefined, to `passthrough`. */
    private readonly cluster: Cluster | undefined,
    private readonly passthrough: Upstream | undefined,
    readonly init: UpstreamRequestInit,
  ) {}

  /** Sends the first attempt; false only if the request could not be queued at all. */
  start(): boolean {
    // A fresh context per request: undici's handler API lets handlers keep their state in it.
    this.handler.onRequestStart?.(this, {});
    if (this.aborted) return true;
    this.init.live?.add(this);
    const timeoutMs = this.init.timeoutMs;
    if (timeoutMs > 0) this.cancelRouteTimer = this.init.clock.schedule(timeoutMs, () => this.onRouteTimeout(), 'request');
    this.send(false);
    return true;
  }

  // ---- DispatchController (called by the caller's handler) ----

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    if (this.done) {
      this.winner?.controller?.abort(reason);
      return;
    }
    const winner = this.winner;
    if (winner?.controller && !winner.ended) {
      // The error comes back through the attempt's onResponseError and on to the caller.
      this.abandonAllBut(winner);
      winner.controller.abort(reason);
      return;
    }
    this.finish(undefined);
    this.abandonAllBut(undefined);
    queueMicrotask(() => this.handler.onResponseError?.(this, reason));
  }

  // ---- close (see InFlight) ----

  stopRetrying(): void {
    if (this.done) return;
    this.cancelHedgeTimer();
    // Waiting out a back-off with nothing in flight: the retry will not go out, nothing can answer.
    if (this.cancelBackoff !== undefined && this.inFlight() === 0) {
      this.abort(new MeshClosedError('the mesh is closed: the request was waiting to be retried'));
    }
  }

  abortForClose(error: MeshClosedError): void {
    if (!this.done) this.abort(error);
  }

  pause(): void {
    this.paused = true;
    this.winner?.controller?.pause();
  }

  resume(): void {
    this.paused = false;
    this.winner?.controller?.resume();
  }

  // ---- attempts ----

  /** Picks a host and sends an attempt; answers the caller when no attempt can be made. */
  private send(retry: boolean, hedge = false): void {
    if (this.done) return;
    const cluster = this.cluster;
    let host: Host | undefined;
    if (cluster) {
      host = this.pickHost(cluster);
      if (!host) {
        // A retry that finds no host too (the endpoints left, or were ejected, meanwhile): Envoy's
        // router answers it as a first attempt, not with the failure that caused the retry.
        this.init.observer.answeredLocally('no-healthy-upstream', ResponseFlag.UH);
        this.localReply(503, cluster.unavailableReason ?? 'no healthy upstream', { [RESPONSE_FLAGS_HEADER]: 'UH' });
        return;
      }
      if (!retry) {
        // Retries were admitted when they were decided (see retryAfter).
        const overflow = cluster.limits.admit(false);
        if (overflow) {
          this.overflowReply(overflow);
          return;
        }
      }
    }
    const attempt = new Attempt(this, host, retry);
    if (this.attempts.length === 0) this.attempts = [attempt];
    else (this.attempts as Attempt[]).push(attempt);
    attempt.trace = this.init.observer.attempt(host, hedge, this.init.retry);
    if (host) onStart(host);
    const perTry = this.init.retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) attempt.cancelTimer = this.init.clock.schedule(perTry, () => this.onPerTryTimeout(attempt, perTry), 'request');
    this.armHedge();
    const body = this.init.body;
    const dispatchOpts = body === undefined ? this.opts : { ...this.opts, body: body.next() };
    try {
      const target: Upstream = cluster && host ? cluster.pool(host, this.init.urlTls) : this.passthrough!;
      if (attempt.trace) attempt.trace.dispatch(target, dispatchOpts, attempt);
      else if (this.init.mirrorOf) this.init.mirrorOf.observer.dispatchMirror(target, dispatchOpts, attempt, this.init.mirrorOf.host);
      else target.dispatch(dispatchOpts, attempt);
    } catch (error) {
      this.attemptFailed(attempt, error instanceof Error ? error : new Error(String(error)));
    }
  }

  private pickHost(cluster: Cluster): Host | undefined {
    const hash = this.init.hash;
    const tried = this.attempts;
    if (tried.length === 0) return cluster.pick(hash);
    let avoid: Set<number> | undefined;
    if (this.init.retry?.retryRemoteLocalities) {
      // Envoy's previous_priorities: retries leave the priorities (localities) already tried.
      avoid = new Set();
      for (const a of tried) {
        const p = a.host ? cluster.priorityOf(a.host) : undefined;
        if (p !== undefined) avoid.add(p);
      }
    }
    if (!this.init.avoidPreviousHosts) return cluster.pick(hash, undefined, avoid);
    return cluster.pick(
      hash,
      (host) => {
        for (let i = 0; i < tried.length; i++) if (tried[i]!.host === host) return true;
        return false;
      },
      avoid,
    );
  }

  attemptStarted(attempt: Attempt, controller: RequestController): void {
    if (attempt.ended || attempt.abandoned || (this.done && this.winner !== attempt)) {
      // Given up on while it waited for a connection: drop it now.
      controller.abort(this.reason ?? ABANDONED);
      return;
    }
    attempt.started = true;
    this.cluster?.limits.started();
  }

  attemptUpgraded(attempt: Attempt, controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.endAttempt(attempt, true);
    if (this.done) return;
    this.winner = attempt;
    this.finish({ status: statusCode, failure: undefined });
    this.handler.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  attemptResponded(attempt: Attempt, controller: RequestController, status: number, headers: IncomingHttpHeaders, statusMessage: string | undefined): void {
    if (attempt.abandoned || this.done) {
      controller.abort(ABANDONED);
      return;
    }
    attempt.trace?.responded(status);
    this.cluster?.reportStatus(attempt.host!, status);
    const policy = this.init.retry;
    if (
      policy !== undefined &&
      retriableResponse(policy.retryOn, policy.statusCodes, status, headers, this.init.retriableHeaderNames ?? NO_NAMES) &&
      this.retryAfter(attempt, String(status))
    ) {
      attempt.abandoned = true;
      const size = bodySize(this.opts.method, headers);
      if (size > DRAIN_LIMIT_BYTES) {
        controller.abort(ABANDONED);
      } else {
        this.drain(attempt);
        // Length unknown (chunked): drained only if its end came with its headers, in the same
        // read; checked once that read is parsed.
        if (size < 0) void Promise.resolve(attempt).then(cutUnfinishedDrain);
      }
      return;
    }
    // This response is the caller's.
    this.winner = attempt;
    this.winnerStatus = status;
    this.cancelHedgeTimer();
    this.abandonAllBut(attempt);
    if (this.paused) controller.pause();
    if (this.decorate(headers as Record<string, string | string[]>)) this.rawHeaders = toRawHeaders(headers);
    else this.rawHeaders = controller.rawHeaders ?? null;
    this.handler.onResponseStart?.(this, status, headers, statusMessage);
  }

  /**
   * Reads a dropped answer's small body to its end so that its connection goes back to the pool,
   * as Envoy drains it: aborting would close the connection, one per retried 5xx. The retry does
   * not wait for it; a drain still running when the request ends is cut then.
   */
  private drain(attempt: Attempt): void {
    attempt.draining = true;
    // Its outcome is decided: the per-try timer no longer applies to it.
    attempt.cancelTimer?.();
    attempt.cancelTimer = undefined;
  }

  deliverData(_controller: RequestController, chunk: Buffer): void {
    this.handler.onResponseData?.(this, chunk);
  }

  attemptEnded(attempt: Attempt, controller: RequestController, trailers: IncomingHttpHeaders): void {
    this.endAttempt(attempt, !attempt.abandoned);
    if (this.winner !== attempt) return;
    this.finish({ status: this.winnerStatus, failure: undefined });
    this.rawTrailers = controller.rawTrailers ?? null;
    this.handler.onResponseEnd?.(this, trailers);
  }

  attemptFailed(attempt: Attempt, error: Error): void {
    const own = this.callersFault(attempt, error);
    if (own !== undefined) {
      this.failForCaller(attempt, own, error);
      return;
    }
    const wasAbandoned = attempt.abandoned;
    attempt.trace?.failed(error, this.aborted || isCallerAbort(error) ? AttemptEnd.Cancelled : wasAbandoned ? AttemptEnd.Abandoned : AttemptEnd.Error);
    this.endAttempt(attempt, false);
    if (this.winner === attempt) {
      // Failed while streaming the response to the caller: nothing can be retried now.
      this.finish(isCallerAbort(error) || this.aborted ? undefined : { status: this.winnerStatus, failure: classifyFailure(error) });
      this.handler.onResponseError?.(this, error);
      return;
    }
    if (wasAbandoned || this.done) return;
    if (this.aborted) {
      this.finish(undefined);
      this.handler.onResponseError?.(this, this.reason ?? error);
      return;
    }
    const failure = classifyFailure(error);
    if (attempt.host) this.cluster?.report(attempt.host, { status: 0, failure });
    this.lastFailure = failure;
    const policy = this.init.retry;
    if (policy !== undefined && retriableFailure(policy.retryOn, failure, attempt.started) && this.retryAfter(attempt, failure)) return;
    if (this.inFlight() > 0) return; // a hedge may still answer
    this.fail(error);
  }

  /**
   * The caller's own failure behind an attempt's error, when it is one: the request body stream
   * failed (the body can never be sent whole), or undici refused the request as given before
   * sending anything (an invalid header, path or option).
   */
  private callersFault(attempt: Attempt, error: Error): Error | undefined {
    const failure = this.init.body?.failure;
    if (failure !== undefined) return failure;
    if (!attempt.started && isInvalidArgument(error)) return invalidRequest(error);
    return undefined;
  }

  /**
   * Fails the request with the caller's own error at once: no retry, and nothing is counted
   * against the host (outlier detection, latency), the breaker or the limits' retry budget.
   */
  private failForCaller(attempt: Attempt, reason: Error, error: Error): void {
    attempt.trace?.failed(error, AttemptEnd.Cancelled);
    this.endAttempt(attempt, false, false);
    if (this.done) return;
    this.finish(undefined, true);
    this.abandonAllBut(undefined);
    this.handler.onResponseError?.(this, reason);
  }

  /**
   * Decides a retry after `attempt` failed or answered retriably: retries left, the body still
   * replayable, the retry admitted by the cluster's limits (maxRetries, retry budget). When
   * another attempt is still in flight (a hedge) it is waited for instead. True when the caller
   * is not to be answered from `attempt`.
   */
  private retryAfter(attempt: Attempt, reason: string): boolean {
    if (this.inFlight(attempt) > 0) return true;
    // Closing: nothing new starts; the caller gets this answer as it is.
    if (this.init.live?.closing) return false;
    const policy = this.init.retry!;
    if (this.retriesUsed >= policy.numRetries) {
      if (policy.numRetries > 0) this.init.observer.flag(ResponseFlag.URX);
      return false;
    }
    const body = this.init.body;
    if (body && (!body.replayable || (reason === 'timeout' && !body.complete))) return false;
    const cluster = this.cluster;
    if (cluster && cluster.limits.admit(true)) return false;
    this.retriesUsed++;
    this.init.observer.retrying(reason);
    const delay = backoffDelayMs(policy, this.retriesUsed, this.init.random);
    this.cancelBackoff = this.init.clock.schedule(
      delay,
      () => {
        // Cancelled meanwhile: finish() freed what the retry was admitted for.
        if (this.cancelBackoff === undefined) return;
        this.cancelBackoff = undefined;
        this.send(true);
      },
      'request',
    );
    return true;
  }

  /** Our addition: a backup attempt when the current one is slow to answer (idempotent requests). */
  private armHedge(): void {
    const after = this.init.hedgeAfterMs;
    if (after <= 0 || this.cancelHedge || this.winner || this.init.live?.closing) return;
    const policy = this.init.retry;
    if (!policy || this.retriesUsed >= policy.numRetries) return;
    this.cancelHedge = this.init.clock.schedule(
      after,
      () => {
        this.cancelHedge = undefined;
        if (this.done || this.winner || this.init.live?.closing || this.retriesUsed >= policy.numRetries) return;
        const cluster = this.cluster;
        if (cluster && cluster.limits.admit(true)) return;
        this.retriesUsed++;
        this.init.observer.hedging();
        this.send(true, true);
      },
      'request',
    );
  }

  private cancelHedgeTimer(): void {
    this.cancelHedge?.();
    this.cancelHedge = undefined;
  }

  private onPerTryTimeout(attempt: Attempt, timeoutMs: number): void {
    attempt.cancelTimer = undefined;
    if (attempt.ended || this.done) return;
    if (this.winner === attempt) {
      // The response is the caller's already: Envoy resets the stream.
      attempt.controller?.abort(new PerTryTimeoutError(timeoutMs, true));
      return;
    }
    const error = new PerTryTimeoutError(timeoutMs, false);
    attempt.trace?.failed(error, AttemptEnd.Error);
    attempt.abandoned = true;
    attempt.controller?.abort(error);
    // Counted at once: an attempt still queued has no controller to abort and may never start.
    this.endAttempt(attempt, false);
    // An attempt still waiting for a connection never reached its host: nothing to report on it.
    if (attempt.host && attempt.started) this.cluster?.report(attempt.host, { status: 0, failure: 'timeout' });
    this.lastFailure = 'timeout';
    const policy = this.init.retry;
    if (policy !== undefined && retriableFailure(policy.retryOn, 'timeout', attempt.started) && this.retryAfter(attempt, 'timeout')) return;
    if (this.inFlight() > 0) return;
    this.timeoutReply();
  }

  private onRouteTimeout(): void {
    this.cancelRouteTimer = undefined;
    if (this.done) return;
    const winner = this.winner;
    if (winner?.controller && !winner.ended) {
      // Envoy resets a response already streaming; the error comes back through onResponseError.
      winner.controller.abort(this.timeoutError(true));
      return;
    }
    const error = this.timeoutError(false);
    for (let i = 0; i < this.attempts.length; i++) this.attempts[i]!.trace?.failed(error, AttemptEnd.Error);
    this.abandonAllBut(undefined);
    this.lastFailure = 'timeout';
    this.timeoutReply();
  }

  private timeoutError(started: boolean): Error {
    return this.init.deadlineBound ? new DeadlineExceededError(started) : new RouteTimeoutError(this.init.timeoutMs, started);
  }

  /** Envoy's local reply once time is up with no response: 504 "upstream request timeout". */
  private timeoutReply(): void {
    this.init.observer.flag(ResponseFlag.UT);
    this.localReply(504, 'upstream request timeout', { [RESPONSE_FLAGS_HEADER]: 'UT' }, 'Gateway Timeout');
  }

  /** Answers the caller without a response from upstream (their onRequestStart has run). */
  private localReply(status: number, body: string, headers: Record<string, string | string[]>, statusMessage = ''): void {
    this.finish({ status, failure: status === 504 ? 'timeout' : undefined });
    this.abandonAllBut(undefined);
    const out: Record<string, string | string[]> = { 'content-type': 'text/plain', ...headers };
    this.decorate(out);
    // On a later turn, as a network reply would come (see sendLocalReply).
    setImmediate(deliverLocalReply, this, status, body, out, statusMessage);
  }

  /** @internal The deferred half of {@link localReply}. */
  deliverLocal(status: number, body: string, headers: Record<string, string | string[]>, statusMessage: string): void {
    if (this.aborted) {
      // The caller gave up meanwhile: its abort is answered with its reason, as undici would.
      this.handler.onResponseError?.(this, this.reason ?? ABANDONED);
      return;
    }
    deliverLocalResponse(this.handler, new LocalController(), status, body, headers, statusMessage);
  }

  /**
   * A connection-pool limit refused the request before it reached the network: Envoy's 503 with
   * `x-envoy-overloaded: true` and its body (response flag UO).
   */
  private overflowReply(overflow: OverflowError): void {
    this.init.observer.answeredLocally('overflow', ResponseFlag.UO);
    this.localReply(503, 'upstream connect error or disconnect/reset before headers. reset reason: overflow', {
      'x-envoy-overloaded': 'true',
      [RESPONSE_FLAGS_HEADER]: 'UO',
      // Ours: which DestinationRule limit refused it, so the caller need not guess.
      'x-sidecarless-overflow': `${overflow.limit}=${overflow.value}`,
    });
  }

  /** The caller gets the last transport error (a timeout becomes Envoy's 504). */
  private fail(error: Error): void {
    if (this.lastFailure === 'timeout' && error instanceof PerTryTimeoutError) {
      this.timeoutReply();
      return;
    }
    this.finish({ status: 0, failure: this.lastFailure });
    const failure = this.lastFailure;
    if (failure) this.init.observer.flag(failure === 'connect-failure' ? ResponseFlag.UF : failure === 'timeout' ? ResponseFlag.UT : ResponseFlag.UC);
    this.handler.onResponseError?.(this, error);
  }

  /** Route rules and the issued cookie; true when the headers changed. */
  private decorate(headers: Record<string, string | string[]>): boolean {
    const ops = this.init.responseOps ?? NO_OPS;
    for (let i = 0; i < ops.length; i++) applyHeaderOps(headers, ops[i]!);
    const cookie = this.init.setCookie;
    if (cookie !== undefined) {
      const prior = headers['set-cookie'];
      headers['set-cookie'] = prior === undefined ? [cookie] : Array.isArray(prior) ? [...prior, cookie] : [prior, cookie];
    }
    return ops.length > 0 || cookie !== undefined;
  }

  private inFlight(except?: Attempt): number {
    let n = 0;
    for (let i = 0; i < this.attempts.length; i++) {
      const a = this.attempts[i]!;
      if (a !== except && !a.ended && !a.abandoned) n++;
    }
    return n;
  }

  /** Gives up on every attempt but `keep`: aborted if running, dropped when they start. */
  private abandonAllBut(keep: Attempt | undefined): void {
    for (let i = 0; i < this.attempts.length; i++) {
      const a = this.attempts[i]!;
      if (a === keep || a.ended || a.abandoned) continue;
      a.abandoned = true;
      a.controller?.abort(ABANDONED);
    }
  }

  /**
   * Counts an attempt off its host and the cluster's limits, once; `measured` false: no latency
   * sample (the attempt says nothing about the host).
   */
  private endAttempt(attempt: Attempt, ok: boolean, measured = true): void {
    if (attempt.ended) return;
    attempt.ended = true;
    attempt.trace?.end();
    attempt.cancelTimer?.();
    attempt.cancelTimer = undefined;
    const host = attempt.host;
    const cluster = this.cluster;
    if (host) {
      if (measured) {
        const now = this.init.clock.now();
        onFinish(host, now - attempt.startedAt, ok, now);
      } else {
        onDiscard(host);
      }
    }
    if (cluster) cluster.limits.finished(attempt.started, attempt.retry);
  }

  /**
   * The request is decided: stop every timer, and tell the breaker how it ended (undefined: the
   * caller gave up, which is nobody's failure; `callersFault`: nothing to count at all).
   */
  private finish(outcome: AttemptOutcome | undefined, callersFault = false): void {
    if (this.done) return;
    this.done = true;
    const ticket = this.init.ticket;
    if (ticket) {
      if (callersFault) ticket.release();
      else ticket.settle(outcome);
    }
    this.cancelRouteTimer?.();
    this.cancelRouteTimer = undefined;
    const backoff = this.cancelBackoff;
    if (backoff !== undefined) {
      backoff();
      this.cancelBackoff = undefined;
      // The retry it was waiting for never goes out: free what it was admitted for.
      this.cluster?.limits.finished(false, true);
    }
    this.cancelHedgeTimer();
    this.init.live?.remove(this);
    this.init.body?.close();
    // Only a retried request can have drained a dropped answer.
    if (this.attempts.length > 1) this.cutDrains();
  }

  /** Drains still running when the request ends are cut: a pod that stalls a body keeps nothing. */
  private cutDrains(): void {
    for (let i = 0; i < this.attempts.length; i++) {
      const a = this.attempts[i]!;
      if (a.draining && !a.ended) a.controller?.abort(ABANDONED);
    }
  }
}

const NO_ATTEMPTS: readonly Attempt[] = Object.freeze([]);

/** Envoy's default per-request buffer: a dropped answer up to this size is drained, not cut. */
const DRAIN_LIMIT_BYTES = 64 * 1024;

/** A response body's length from its headers; -1 when unknown (chunked, or not a number). */
function bodySize(method: string, headers: IncomingHttpHeaders): number {
  if (method === 'HEAD') return 0;
  const length = headers['content-length'];
  if (typeof length !== 'string' || length === '') return -1;
  const n = Number(length);
  return n >= 0 ? n : -1;
}

function cutUnfinishedDrain(attempt: Attempt): void {
  if (!attempt.ended) attempt.controller?.abort(ABANDONED);
}

function deliverLocalReply(request: UpstreamRequest, status: number, body: string, headers: Record<string, string | string[]>, statusMessage: string): void {
  request.deliverLocal(status, body, headers, statusMessage);
}

/** Stands for "this attempt's result is not needed"; never reaches the caller. */
const ABANDONED = new Error('attempt abandoned by the mesh');
