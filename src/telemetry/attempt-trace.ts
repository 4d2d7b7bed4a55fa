import type { Attributes, Span } from '@opentelemetry/api';
import type { OutboundRequest, ResponseHandler, Upstream } from '../request-protocol.js';
import type { Host } from '../balancer/index.js';
import { CaptureContext } from './capture-context.js';
import type { RequestTelemetry } from './request-telemetry.js';
import * as sc from './semconv.js';
import { errorType, SPAN_KIND_CLIENT, SPAN_STATUS_ERROR } from './span-codes.js';
import { Tracing } from './tracing-mode.js';

/** How an attempt that got no response ended. */
export const AttemptEnd = { Error: 0, Abandoned: 1, Cancelled: 2 } as const;
export type AttemptEnd = (typeof AttemptEnd)[keyof typeof AttemptEnd];

/** The SDK's "suppress tracing" context key (`@opentelemetry/core`), shared through `Symbol.for`. */
const SUPPRESS_TRACING = Symbol.for('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

/**
 * One attempt's client span (ours, or instrumentation-undici's enriched) and its
 * `http.client.request.duration` sample.
 */
export class AttemptTrace {
  private span: Span | undefined;
  /** The span is instrumentation-undici's: it sets status and ends it. */
  private enriched = false;
  private ended = false;
  private readonly startedAt = performance.now();
  private status = 0;
  private error: string | undefined;

  constructor(
    private readonly request: RequestTelemetry,
    private readonly index: number,
    private readonly host: Host | undefined,
    private readonly hedge: boolean,
    private readonly retryReason: string | undefined,
  ) {
    const mesh = request.mesh;
    if (mesh.tracing === Tracing.Own) {
      const span = mesh.tracer.startSpan(request.spanName, { kind: SPAN_KIND_CLIENT, attributes: request.samplingAttributes() }, request.parent);
      this.span = span;
      if (span.isRecording()) this.decorate(span);
    }
  }

  /** The request's and this attempt's mesh attributes, and the pod, on a recording span. */
  private decorate(span: Span): void {
    this.request.decorate(span);
    if (this.index > 0) span.setAttribute(sc.ATTR_HTTP_REQUEST_RESEND_COUNT, this.index);
    if (this.hedge) span.setAttribute(sc.ATTR_MESH_HEDGE, true);
    if (this.retryReason !== undefined) span.setAttribute(sc.ATTR_MESH_RETRY_REASON, this.retryReason);
    const endpoint = this.host?.endpoint;
    if (endpoint) {
      span.setAttribute(sc.ATTR_NETWORK_PEER_ADDRESS, endpoint.address);
      span.setAttribute(sc.ATTR_NETWORK_PEER_PORT, endpoint.port);
    }
  }

  /**
   * Sends the attempt: with trace context injected (own span), or with a context active that
   * catches instrumentation-undici's span to enrich it.
   */
  dispatch(dispatcher: Upstream, opts: OutboundRequest, handler: ResponseHandler): boolean {
    const request = this.request;
    const api = request.mesh.api;
    if (this.span) {
      const headers = { ...(opts.headers as Record<string, string | string[]>) };
      const ctx = api.trace.setSpan(request.parent, this.span);
      api.propagation.inject(ctx, headers);
      const sendOpts = { ...opts, headers };
      if (!request.mesh.undiciInstrumented) return dispatcher.dispatch(sendOpts, handler);
      // `own` forced while instrumentation-undici is active: the SDK's suppression flag keeps it
      // from starting a second span (and so from injecting a second traceparent).
      return api.context.with(ctx.setValue(SUPPRESS_TRACING, true), dispatcher.dispatch, dispatcher, sendOpts, handler);
    }
    if (request.mesh.tracing !== Tracing.Enrich) return dispatcher.dispatch(opts, handler);
    const capture = new CaptureContext(request.parent);
    const sent = api.context.with(capture, dispatcher.dispatch, dispatcher, opts, handler);
    if (capture.span && !this.ended) {
      const span = capture.span;
      this.span = span;
      this.enriched = true;
      if (span.isRecording()) {
        // The service the caller named; the instrumentation saw the pod as the origin.
        span.setAttribute(sc.ATTR_SERVER_ADDRESS, request.origin.hostname);
        span.setAttribute(sc.ATTR_SERVER_PORT, request.origin.port);
        this.decorate(span);
      }
    }
    return sent;
  }

  /** The attempt's response status (it may still be dropped for a retry). */
  responded(status: number): void {
    this.status = status;
    if (status >= 400) this.error = String(status);
    const span = this.span;
    if (!span || this.enriched) return;
    span.setAttribute(sc.ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (status >= 400) {
      span.setAttribute(sc.ATTR_ERROR_TYPE, this.error!);
      span.setStatus({ code: SPAN_STATUS_ERROR });
    }
  }

  /** The attempt ended without (all of) its response. A cancelled or abandoned one is no error. */
  failed(error: Error, how: AttemptEnd): void {
    if (this.ended) return;
    const span = this.span;
    if (how === AttemptEnd.Abandoned) {
      span?.setAttribute(sc.ATTR_MESH_ABANDONED, true);
      return;
    }
    if (how === AttemptEnd.Cancelled) return;
    this.error = errorType(error);
    if (!span || this.enriched) return;
    span.setAttribute(sc.ATTR_ERROR_TYPE, this.error);
    span.recordException(error);
    span.setStatus({ code: SPAN_STATUS_ERROR, message: error.message });
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const mesh = this.request.mesh;
    const instruments = mesh.metrics.current;
    // With instrumentation-undici active it records this histogram itself.
    if (instruments && mesh.httpMetrics && mesh.tracing !== Tracing.Enrich) {
      const o = this.request.origin;
      const a: Attributes = {
        [sc.ATTR_HTTP_REQUEST_METHOD]: sc.semconvMethod(this.request.method),
        [sc.ATTR_SERVER_ADDRESS]: o.hostname,
        [sc.ATTR_SERVER_PORT]: o.port,
        [sc.ATTR_URL_SCHEME]: o.scheme,
      };
      if (this.status > 0) a[sc.ATTR_HTTP_RESPONSE_STATUS_CODE] = this.status;
      if (this.error !== undefined) a[sc.ATTR_ERROR_TYPE] = this.error;
      instruments.httpDuration.record((performance.now() - this.startedAt) / 1000, a);
    }
    if (this.span && !this.enriched) this.span.end();
  }
}
