import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { OutboundRequest, RequestController, ResponseHandler, Upstream } from '../request-protocol.js';
import type { Host } from '../balancer/index.js';
import type { Cluster } from '../cluster/cluster.js';
import type { OverflowError } from '../resilience/errors.js';
import type { AttemptOutcome } from '../resilience/outcome.js';
import { classifyFailure, isCallerAbort, isInvalidArgument } from '../resilience/outcome.js';
import type { BreakerTicket } from '../resilience/service-breaker.js';
import { retriableFailure, retriableResponse } from '../resilience/retry-on.js';
import type { HeaderOps } from '../routing/route-actions.js';
import { applyHeaderOps } from '../routing/route-actions.js';
import { MeshClosedError } from '../errors.js';
import { invalidRequest } from './caller-errors.js';
import type { InFlight, InFlightItem } from './in-flight.js';
import { DeadlineExceededError, PerTryTimeoutError, RouteTimeoutError } from './errors.js';
import { EngineAttempt } from './attempts/attempt.js';
import type { AttemptPolicy, EngineFlag } from './attempts/attempt-engine.js';
import { ABANDONED, AttemptEngine } from './attempts/attempt-engine.js';
import { deliverLocalResponse, LocalController } from './local-reply.js';
import { toRawHeaders } from './raw-headers.js';
import type { ReplayableBody } from '../transport/replayable-body.js';
import type { AttemptObserver, RequestObserver } from './observer.js';
import { AttemptEnd } from '../telemetry/attempt-trace.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';

const NO_OPS: readonly HeaderOps[] = [];
const NO_NAMES: readonly string[] = [];

/** Everything one request's attempts share, decided before the first is sent. */
export interface UpstreamRequestInit extends AttemptPolicy {
  /** Route timeout, already capped by a propagated deadline; 0 for none. */
  readonly timeoutMs: number;
  /** The timeout came from the deadline, not the route: report it as such. */
  readonly deadlineBound: boolean;
  readonly responseOps: readonly HeaderOps[] | undefined;
  readonly setCookie: string | undefined;
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
 * owns the policy (which response wins, whether to retry). `started`: undici handed it a connection.
 */
class Attempt extends EngineAttempt implements ResponseHandler {
  controller: RequestController | undefined = undefined;
  /** Response headers arrived. */
  responded = false;
  /** An abandoned retriable answer whose small body is read to its end to keep the connection. */
  draining = false;
  /** Its span and duration sample, when telemetry records anything. */
  trace: AttemptObserver | undefined = undefined;

  constructor(
    readonly request: UpstreamRequest,
    host: Host | undefined,
    retry: boolean,
  ) {
    super(host, retry, request.init.clock.now());
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
 * One HTTP request through the mesh to its destination, across however many attempts it takes.
 * The policy across attempts (retries, back-off, hedging, per-try timeouts, host choice, limits,
 * accounting) is the {@link AttemptEngine}'s; this adds HTTP: the route timeout (all attempts),
 * which responses are retriable, Envoy's local replies, undici's handler API; and it is the
 * controller the caller's handler sees, so the caller can pause, resume or abort whichever
 * attempt is current.
 *
 * A response is passed on once it is known to be final: the headers of a retriable response are
 * never shown to the caller while a retry is still possible.
 */
export class UpstreamRequest extends AttemptEngine<Attempt> implements InFlightItem, RequestController {
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

  private winnerStatus = 0;
  private cancelRouteTimer: (() => void) | undefined;

  constructor(
    private readonly handler: ResponseHandler,
    /** The request as every attempt sends it (a pass-through one with its origin set). */
    private readonly opts: OutboundRequest,
    /** Attempts go to this cluster's endpoints; or, when undefined, to `passthrough`. */
    cluster: Cluster | undefined,
    private readonly passthrough: Upstream | undefined,
    readonly init: UpstreamRequestInit,
  ) {
    super(cluster, init);
  }

  /** Sends the first attempt; false only if the request could not be queued at all. */
  start(): boolean {
    // A fresh context per request: undici's handler API lets handlers keep their state in it.
    this.handler.onRequestStart?.(this, {});
    if (this.aborted) return true;
    this.init.live?.add(this);
    const timeoutMs = this.init.timeoutMs;
    if (timeoutMs > 0) this.cancelRouteTimer = this.init.clock.schedule(timeoutMs, () => this.onRouteTimeout(), 'request');
    this.sendAttempt(false, false);
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

  // ---- the engine's protocol side ----

  protected createAttempt(host: Host | undefined, retry: boolean, hedge: boolean): Attempt {
    const attempt = new Attempt(this, host, retry);
    attempt.trace = this.init.observer.attempt(host, hedge, this.init.retry);
    return attempt;
  }

  protected transmit(attempt: Attempt): void {
    const body = this.init.body;
    const dispatchOpts = body === undefined ? this.opts : { ...this.opts, body: body.next() };
    const cluster = this.cluster;
    const host = attempt.host;
    try {
      const target: Upstream = cluster && host ? cluster.pool(host, this.init.urlTls) : this.passthrough!;
      if (attempt.trace) attempt.trace.dispatch(target, dispatchOpts, attempt);
      else if (this.init.mirrorOf) this.init.mirrorOf.observer.dispatchMirror(target, dispatchOpts, attempt, this.init.mirrorOf.host);
      else target.dispatch(dispatchOpts, attempt);
    } catch (error) {
      this.attemptFailed(attempt, error instanceof Error ? error : new Error(String(error)));
    }
  }

  protected abortAttempt(attempt: Attempt, reason: Error): void {
    attempt.controller?.abort(reason);
  }

  protected noHealthyUpstream(cluster: Cluster): void {
    this.init.observer.answeredLocally('no-healthy-upstream', ResponseFlag.UH);
    this.localReply(503, cluster.unavailableReason ?? 'no healthy upstream', { [RESPONSE_FLAGS_HEADER]: 'UH' });
  }

  protected overflowed(overflow: OverflowError): void {
    this.overflowReply(overflow);
  }

  protected timedOut(): void {
    this.timeoutReply();
  }

  protected attemptTimedOut(attempt: Attempt, error: PerTryTimeoutError): void {
    attempt.trace?.failed(error, AttemptEnd.Error);
  }

  protected closing(): boolean {
    return this.init.live?.closing === true;
  }

  protected canResend(reason: string): boolean {
    const body = this.init.body;
    return !body || (body.replayable && (reason !== 'timeout' || body.complete));
  }

  protected retrying(reason: string): void {
    this.init.observer.retrying(reason);
  }

  protected hedging(): void {
    this.init.observer.hedging();
  }

  protected flag(flag: EngineFlag): void {
    this.init.observer.flag(ResponseFlag[flag]);
  }

  // ---- undici's calls, through the attempt's handler ----

  attemptStarted(attempt: Attempt, controller: RequestController): void {
    if (attempt.ended || attempt.abandoned || (this.done && this.winner !== attempt)) {
      // Given up on while it waited for a connection: drop it now.
      controller.abort(this.reason ?? ABANDONED);
      return;
    }
    this.markStarted(attempt);
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
    this.winnerStatus = status;
    this.win(attempt);
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
    this.forgetAttempts();
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
    for (let a = this.firstAttempt; a; a = a.nextAttempt as Attempt | undefined) a.trace?.failed(error, AttemptEnd.Error);
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

  /** The engine's accounting, and the attempt's trace ended first. */
  protected override endAttempt(attempt: Attempt, ok: boolean, measured = true): boolean {
    if (attempt.ended) return false;
    attempt.trace?.end();
    return super.endAttempt(attempt, ok, measured);
  }

  /**
   * The request is decided: stop every timer, and tell the breaker how it ended (undefined: the
   * caller gave up, which is nobody's failure; `callersFault`: nothing to count at all).
   */
  private finish(outcome: AttemptOutcome | undefined, callersFault = false): void {
    if (this.done) return;
    this.stopAttempts();
    const ticket = this.init.ticket;
    if (ticket) {
      if (callersFault) ticket.release();
      else ticket.settle(outcome);
    }
    this.cancelRouteTimer?.();
    this.cancelRouteTimer = undefined;
    this.init.live?.remove(this);
    this.init.body?.close();
    // Only a retried request can have drained a dropped answer.
    if (this.attemptCount > 1) this.cutDrains();
  }

  /** Drains still running when the request ends are cut: a pod that stalls a body keeps nothing. */
  private cutDrains(): void {
    for (let a = this.firstAttempt; a; a = a.nextAttempt as Attempt | undefined) {
      if (a.draining && !a.ended) a.controller?.abort(ABANDONED);
    }
  }
}

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
