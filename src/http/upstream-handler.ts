import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Host } from '../balancer/index.js';
import { onDiscard, onFinish, onStart } from '../balancer/index.js';
import type { MeshClock } from '../clock.js';
import type { Cluster } from '../cluster/cluster.js';
import type { AttemptOutcome } from '../resilience/outcome.js';
import { classifyFailure, isCallerAbort, isInvalidArgument } from '../resilience/outcome.js';
import type { BreakerTicket } from '../resilience/service-breaker.js';
import type { HeaderOps } from '../routing/route-actions.js';
import { applyHeaderOps } from '../routing/route-actions.js';
import { invalidRequest } from './caller-errors.js';
import { RouteTimeoutError } from './errors.js';
import { deliverLocalResponse, LocalController } from './local-reply.js';
import { toRawHeaders } from './raw-headers.js';

const NO_OPS: readonly HeaderOps[] = [];

/**
 * Sits between undici's connection pool and the caller's handler for one upstream attempt: feeds
 * the outcome back to the balancer (in-flight count, latency), applies response header rules and
 * the cookie a hash policy issued, and enforces the route timeout.
 *
 * The route timeout runs from dispatch, so time spent waiting for a connection counts, as in
 * Envoy (whose timer starts once the downstream request is complete: the same instant for a
 * request without a streamed body). When it passes before any response the caller gets Envoy's
 * 504 "upstream request timeout" and the attempt is aborted, which closes its connection (or, when
 * it has not been written yet, drops it from the queue).
 */
export class UpstreamHandler implements Dispatcher.DispatchHandler {
  private readonly started: number;
  private cancelTimer: (() => void) | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private responded = false;
  private done = false;
  /** The caller has been answered locally (timeout before the request was written). */
  private answered = false;
  private status = 0;
  /** undici gave the attempt a connection (onRequestStart): it is no longer pending. */
  private requestStarted = false;

  constructor(
    private readonly inner: Dispatcher.DispatchHandler,
    /** The endpoint picked by the balancer; undefined for a pass-through destination. */
    private readonly host: Host | undefined,
    private readonly clock: MeshClock,
    private readonly responseOps: readonly HeaderOps[] = NO_OPS,
    private readonly timeoutMs = 0,
    private readonly setCookie: string | undefined = undefined,
    /** The cluster the attempt was admitted to: its limits, outlier detection (with `host`). */
    private readonly cluster: Cluster | undefined = undefined,
    /** The service breaker's ticket for this request, settled with its outcome. */
    private readonly ticket: BreakerTicket | undefined = undefined,
  ) {
    this.started = clock.now();
    if (host) onStart(host);
    if (timeoutMs > 0) this.cancelTimer = clock.schedule(timeoutMs, () => this.onTimeout(), 'background');
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.controller = controller;
    if (!this.done) {
      this.requestStarted = true;
      this.cluster?.limits.started();
    }
    if (this.answered) {
      controller.abort(new RouteTimeoutError(this.timeoutMs, false));
      return;
    }
    this.inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.finish(true, { status: statusCode, failure: undefined });
    this.inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStarted(): void {
    (this.inner as { onResponseStarted?: () => void }).onResponseStarted?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    if (this.answered) return;
    this.responded = true;
    this.status = statusCode;
    if (this.decorate(headers as Record<string, string | string[]>)) controller.rawHeaders = toRawHeaders(headers);
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.answered) return;
    this.inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.finish(this.status < 500, { status: this.status, failure: undefined });
    if (this.answered) return;
    this.inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    if (!this.requestStarted && !this.done && isInvalidArgument(error)) {
      // Refused by undici as given: nothing reached the host, nothing is counted.
      this.done = true;
      this.cancelTimer?.();
      this.cancelTimer = undefined;
      if (this.host) onDiscard(this.host);
      this.cluster?.limits.finished(false, false);
      this.ticket?.release();
      this.inner.onResponseError?.(controller, invalidRequest(error));
      return;
    }
    // A response that started counts by its status; the caller giving up counts for nothing.
    this.finish(false, this.responded
      ? { status: this.status, failure: undefined }
      : isCallerAbort(error) ? undefined : { status: 0, failure: classifyFailure(error) });
    if (this.answered) return;
    if (error instanceof RouteTimeoutError && !this.responded) {
      this.answered = true;
      this.reply504(new LocalController());
      return;
    }
    this.inner.onResponseError?.(controller, error);
  }

  /** Route rules and the issued cookie; true when the headers changed. */
  private decorate(headers: Record<string, string | string[]>): boolean {
    const ops = this.responseOps;
    for (let i = 0; i < ops.length; i++) applyHeaderOps(headers, ops[i]!);
    if (this.setCookie !== undefined) {
      const prior = headers['set-cookie'];
      headers['set-cookie'] = prior === undefined ? [this.setCookie] : Array.isArray(prior) ? [...prior, this.setCookie] : [prior, this.setCookie];
    }
    return ops.length > 0 || this.setCookie !== undefined;
  }

  /** Envoy's local reply for a route timeout; the route's response rules apply to it too. */
  private reply504(controller: LocalController): void {
    const headers: Record<string, string | string[]> = { 'content-type': 'text/plain' };
    this.decorate(headers);
    deliverLocalResponse(this.inner, controller, 504, 'upstream request timeout', headers, 'Gateway Timeout');
  }

  private onTimeout(): void {
    this.cancelTimer = undefined;
    if (this.done || this.answered) return;
    if (this.controller) {
      // Envoy answers 504 "upstream request timeout" when no response has started; once it has,
      // the stream is reset. Aborting the attempt frees its connection either way; the error
      // comes back through onResponseError.
      this.controller.abort(new RouteTimeoutError(this.timeoutMs, this.responded));
      return;
    }
    // Still waiting for a connection: answer now; the attempt is aborted when it starts. No host
    // was reached, so outlier detection hears nothing (as in Envoy); the breaker sees a timeout.
    this.answered = true;
    this.finish(false, undefined, { status: 0, failure: 'timeout' });
    const local = new LocalController();
    this.inner.onRequestStart?.(local, {});
    if (!local.aborted) this.reply504(local);
  }

  /**
   * The attempt ended: balancer stats, then its cluster's limits, outlier detection (`outcome`,
   * undefined when the upstream is not to blame) and the breaker (`requestOutcome`, by default
   * the same).
   */
  private finish(ok: boolean, outcome: AttemptOutcome | undefined, requestOutcome: AttemptOutcome | undefined = outcome): void {
    if (this.done) return;
    this.done = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const host = this.host;
    if (host) {
      const now = this.clock.now();
      onFinish(host, now - this.started, ok, now);
    }
    const cluster = this.cluster;
    if (cluster) {
      cluster.limits.finished(this.requestStarted, false);
      if (host && outcome) cluster.report(host, outcome);
    }
    this.ticket?.settle(requestOutcome);
  }
}
