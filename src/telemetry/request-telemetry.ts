import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Attributes, Context, Link, Span, SpanOptions } from '@opentelemetry/api';
import type { OutboundRequest, RequestController, ResponseHandler, Upstream } from '../request-protocol.js';
import type { Host } from '../balancer/index.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import { isCallerAbort } from '../resilience/outcome.js';
import { AttemptTrace } from './attempt-trace.js';
import { CaptureContext } from './capture-context.js';
import type { MeshTelemetry } from './mesh-telemetry.js';
import { formatResponseFlags, ResponseFlag } from './response-flags.js';
import * as sc from './semconv.js';
import { REQUEST_SPAN_NAME } from './semconv.js';
import { SpanEndingHandler } from './span-ending-handler.js';
import { errorType, SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL, SPAN_STATUS_ERROR } from './span-codes.js';
import { Tracing } from './tracing-mode.js';
import { redactedUrl } from './url-redaction.js';

/** Where the caller sent the request: the service host and port as written. */
export interface RequestOrigin {
  readonly scheme: string;
  readonly hostname: string;
  readonly port: number;
  readonly authority: string;
}

/**
 * Telemetry of one request through the mesh, across its attempts: the caller's handler wrapped, so
 * the final status, body sizes and end are seen however the request was answered (by a pod, or by
 * the mesh itself: a fault, a rate limit, an overflow). Made only when something is recorded.
 */
export class RequestTelemetry implements ResponseHandler {
  /**
   * The parent of every attempt's span: the caller's context when it dispatched, or, when that has
   * no span and the request may be sent more than once, the request's own span (see `attempt`).
   */
  parent: Context;
  /** The span of the logical request, made only when it is the attempts' parent. */
  private requestSpan: Span | undefined;
  private readonly startedAt = performance.now();
  /** Envoy response flags collected on the way. */
  flags = 0;
  attempts = 0;
  /** Why the next attempt is a retry (the previous one's status or failure). */
  private retryReason: string | undefined;
  /** Set when the mesh answered itself: which local reply. */
  private localReply: string | undefined;
  private route: string | undefined;
  private destination: string | undefined;
  private subset: string | undefined;
  private cluster: string | undefined;
  private faultDelayMs = 0;
  private host: Host | undefined;
  private status = 0;
  private grpcStatus = '';
  requestBytes = 0;
  private responseBytes = 0;
  private done = false;
  private urlFull: string | undefined;

  constructor(
    readonly mesh: MeshTelemetry,
    private readonly inner: ResponseHandler,
    readonly method: string,
    readonly origin: RequestOrigin,
    readonly serviceHost: string,
    readonly path: string,
  ) {
    this.parent = mesh.api.context.active();
  }

  // ---- what the data path tells ----

  /** The route and destination chosen (cluster: its `host|subset|port` key). */
  routed(route: string | undefined, destination: string, subset: string | undefined, cluster: string | undefined): void {
    this.route = route;
    this.destination = destination;
    this.subset = subset;
    this.cluster = cluster;
  }

  /** The fault filter delayed the request. */
  delayed(ms: number): void {
    this.flags |= ResponseFlag.DI;
    this.faultDelayMs = ms;
  }

  /** The mesh answered without an upstream response (`reason`), with Envoy's flag for it. */
  answeredLocally(reason: string, flag: number): void {
    this.localReply = reason;
    this.flags |= flag;
    if (flag === ResponseFlag.RL) this.mesh.metrics.count('rateLimited', this.clusterAttributes());
    // An open breaker is flagged UO too (Envoy's "circuit breaking"), but is no pool overflow.
    else if (reason === 'overflow') this.mesh.metrics.count('overflows', this.clusterAttributes());
  }

  flag(flag: number): void {
    this.flags |= flag;
  }

  /** A retry was decided after an attempt answered or failed with `reason`. */
  retrying(reason: string): void {
    this.retryReason = reason;
    this.mesh.metrics.count('retries', this.clusterAttributes());
  }

  hedging(): void {
    this.retryReason = undefined;
    this.mesh.metrics.count('hedges', this.clusterAttributes());
  }

  /**
   * An attempt to `host` (undefined: passed through by name) is about to be sent. `retry`, given
   * with the first attempt, says whether there may be more: then, when the caller has no span,
   * the request gets a span of its own for its attempts to share a trace under.
   */
  attempt(host: Host | undefined, hedge: boolean, retry?: RetryPolicy): AttemptTrace | undefined {
    const index = this.attempts++;
    this.host = host;
    const mesh = this.mesh;
    if (mesh.tracing === Tracing.Off) {
      if (!mesh.httpMetrics) return undefined;
    } else if (index === 0 && retry !== undefined && retry.numRetries > 0) {
      this.openRequestSpan();
    }
    const reason = hedge ? undefined : this.retryReason;
    this.retryReason = undefined;
    return new AttemptTrace(this, index, host, hedge, reason);
  }

  /**
   * Without a span in the caller's context each attempt's span would start a trace of its own:
   * one INTERNAL span for the logical request becomes their parent instead (not an HTTP client
   * span: the conventions want those per attempt only). A caller's span is parent enough. It
   * carries only what is about the whole request, set at its end: the service, route and pod
   * are on its attempts, and every attribute costs (about 0.15 µs in the SDK).
   */
  private openRequestSpan(): void {
    const api = this.mesh.api;
    const caller = api.trace.getSpanContext(this.parent);
    if (caller !== undefined && api.isSpanContextValid(caller)) return;
    const span = this.mesh.tracer.startSpan(REQUEST_SPAN_NAME, { kind: SPAN_KIND_INTERNAL, startTime: performance.timeOrigin + this.startedAt }, this.parent);
    this.requestSpan = span;
    this.parent = api.trace.setSpan(this.parent, span);
  }

  /** The span name: the method (`HTTP` for a method the conventions do not know). */
  get spanName(): string {
    const m = sc.semconvMethod(this.method);
    return m === '_OTHER' ? 'HTTP' : m;
  }

  /**
   * The attributes the conventions want known when the span starts (samplers read them). The
   * others are set on the started span, and only when it records: the SDK validates start
   * attributes twice, so fewer of them is cheaper.
   */
  samplingAttributes(): Attributes {
    const method = sc.semconvMethod(this.method);
    const a: Attributes = {
      [sc.ATTR_HTTP_REQUEST_METHOD]: method,
      [sc.ATTR_SERVER_ADDRESS]: this.origin.hostname,
      [sc.ATTR_SERVER_PORT]: this.origin.port,
      [sc.ATTR_URL_FULL]: (this.urlFull ??= redactedUrl(this.origin.scheme, this.origin.authority, this.path, false)),
    };
    if (method === '_OTHER') a[sc.ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = this.method;
    return a;
  }

  /** The mesh's attributes of the request (route, destination, fault delay) on `span`. */
  decorate(span: Span): void {
    if (this.route !== undefined) span.setAttribute(sc.ATTR_MESH_ROUTE, this.route);
    if (this.destination !== undefined) span.setAttribute(sc.ATTR_MESH_DESTINATION, this.destination);
    if (this.subset !== undefined) span.setAttribute(sc.ATTR_MESH_SUBSET, this.subset);
    if (this.cluster !== undefined) span.setAttribute(sc.ATTR_MESH_CLUSTER, this.cluster);
    if (this.faultDelayMs > 0) span.setAttribute(sc.ATTR_MESH_FAULT_DELAY, this.faultDelayMs);
  }

  private clusterAttributes(): Attributes {
    return { [sc.ATTR_MESH_CLUSTER]: this.cluster ?? '', [sc.ATTR_MESH_DESTINATION]: this.destination ?? this.serviceHost };
  }

  // ---- the caller's handler, wrapped ----

  onRequestStart(controller: RequestController, context: unknown): void {
    this.inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.status = statusCode;
    try {
      this.inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
    } finally {
      this.finish(undefined);
    }
  }

  onResponseStart(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.status = statusCode;
    const grpc = headers['grpc-status'];
    if (typeof grpc === 'string') this.grpcStatus = grpc;
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: RequestController, chunk: Buffer): void {
    this.responseBytes += chunk.length;
    this.inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: RequestController, trailers: IncomingHttpHeaders): void {
    const grpc = trailers['grpc-status'];
    if (typeof grpc === 'string') this.grpcStatus = grpc;
    try {
      this.inner.onResponseEnd?.(controller, trailers);
    } finally {
      this.finish(undefined);
    }
  }

  onResponseError(controller: RequestController, error: Error): void {
    try {
      this.inner.onResponseError?.(controller, error);
    } finally {
      this.finish(error);
    }
  }

  // ---- the end ----

  private finish(error: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    const cancelled = error !== undefined && isCallerAbort(error);
    if (cancelled) this.flags |= ResponseFlag.DC;
    const mesh = this.mesh;
    // Refused or answered by the mesh before any attempt: a span of its own, so operators see it.
    if (this.attempts === 0 && mesh.tracing !== Tracing.Off) this.localSpan(error, cancelled);
    if (this.requestSpan !== undefined) this.endRequestSpan(error, cancelled);
    if (mesh.metrics.current?.istioRequests) this.recordIstio();
  }

  /** The logical request's outcome, as the caller saw it, on its span. */
  private endRequestSpan(error: Error | undefined, cancelled: boolean): void {
    const span = this.requestSpan!;
    if (span.isRecording()) {
      span.setAttribute(sc.ATTR_MESH_ATTEMPTS, this.attempts);
      if (this.flags !== 0) span.setAttribute(sc.ATTR_MESH_RESPONSE_FLAGS, formatResponseFlags(this.flags));
      if (this.status > 0) {
        span.setAttribute(sc.ATTR_HTTP_RESPONSE_STATUS_CODE, this.status);
        if (this.status >= 400) {
          span.setAttribute(sc.ATTR_ERROR_TYPE, String(this.status));
          span.setStatus({ code: SPAN_STATUS_ERROR });
        }
      } else if (error && !cancelled) {
        span.setAttribute(sc.ATTR_ERROR_TYPE, errorType(error));
        span.setStatus({ code: SPAN_STATUS_ERROR, message: error.message });
      }
    }
    span.end();
  }

  private localSpan(error: Error | undefined, cancelled: boolean): void {
    const attributes = this.samplingAttributes();
    if (this.localReply !== undefined) attributes[sc.ATTR_MESH_LOCAL_REPLY] = this.localReply;
    if (this.flags !== 0) attributes[sc.ATTR_MESH_RESPONSE_FLAGS] = formatResponseFlags(this.flags);
    if (this.flags & ResponseFlag.FI) attributes[sc.ATTR_MESH_FAULT_ABORT] = true;
    if (this.flags & ResponseFlag.RL) attributes[sc.ATTR_MESH_RATE_LIMITED] = true;
    if (this.localReply === 'overflow') attributes[sc.ATTR_MESH_OVERFLOW] = true;
    const options: SpanOptions = { kind: SPAN_KIND_CLIENT, startTime: performance.timeOrigin + this.startedAt, attributes };
    const span = this.mesh.tracer.startSpan(this.spanName, options, this.parent);
    this.decorate(span);
    if (this.status > 0) {
      span.setAttribute(sc.ATTR_HTTP_RESPONSE_STATUS_CODE, this.status);
      if (this.status >= 400) {
        span.setAttribute(sc.ATTR_ERROR_TYPE, String(this.status));
        span.setStatus({ code: SPAN_STATUS_ERROR });
      }
    } else if (error && !cancelled) {
      span.setAttribute(sc.ATTR_ERROR_TYPE, errorType(error));
      span.recordException(error);
      span.setStatus({ code: SPAN_STATUS_ERROR, message: error.message });
    }
    span.end();
  }

  /** Istio's standard metrics for this request, labelled as a sidecar with `reporter="source"`. */
  private recordIstio(): void {
    const m = this.mesh.metrics.current!;
    const protocol = this.grpcStatus !== '' ? 'grpc' : 'http';
    const attributes = istioSourceAttributes(this.mesh, this.destination ?? this.serviceHost, this.host, protocol, this.status, this.flags, this.grpcStatus);
    m.istioRequests!.add(1, attributes);
    m.istioDuration!.record(performance.now() - this.startedAt, attributes);
    m.istioRequestBytes!.record(this.requestBytes, attributes);
    m.istioResponseBytes!.record(this.responseBytes, attributes);
  }

  // ---- mirrors ----

  /**
   * Sends a mirrored copy: its span is a new trace LINKED to the caller's span, not its child, as
   * the copy's outcome is no part of the caller's request.
   */
  dispatchMirror(dispatcher: Upstream, opts: OutboundRequest, handler: ResponseHandler, target: string): boolean {
    const mesh = this.mesh;
    if (mesh.tracing === Tracing.Off) return dispatcher.dispatch(opts, handler);
    const api = mesh.api;
    const caller = api.trace.getSpanContext(this.parent);
    const links: Link[] = caller && api.isSpanContextValid(caller) ? [{ context: caller }] : [];
    const attributes = this.samplingAttributes();
    if (mesh.tracing === Tracing.Own) {
      const span = mesh.tracer.startSpan(this.spanName, { kind: SPAN_KIND_CLIENT, root: true, links, attributes }, mesh.rootContext);
      this.decorateMirror(span, target);
      const headers = { ...(opts.headers as Record<string, string | string[]>) };
      api.propagation.inject(api.trace.setSpan(mesh.rootContext, span), headers);
      return dispatcher.dispatch({ ...opts, headers }, new SpanEndingHandler(span, handler));
    }
    // instrumentation-undici starts the copy's span: a root one, to which the link is added.
    const capture = new CaptureContext(mesh.rootContext);
    const sent = mesh.api.context.with(capture, dispatcher.dispatch, dispatcher, opts, handler);
    if (capture.span) {
      capture.span.setAttributes(attributes);
      this.decorateMirror(capture.span, target);
      if (links.length > 0) capture.span.addLink?.(links[0]!);
    }
    return sent;
  }

  private decorateMirror(span: Span, target: string): void {
    this.decorate(span);
    span.setAttribute(sc.ATTR_MESH_MIRROR, true);
    span.setAttribute(sc.ATTR_MESH_DESTINATION, target);
  }
}

/** Istio's `destination_service_name` and `_namespace` of a service host. */
/** The labels of one request's Istio standard metrics, as the client's sidecar reports them (`reporter="source"`). */
export function istioSourceAttributes(
  mesh: MeshTelemetry,
  service: string,
  host: Host | undefined,
  protocol: 'http' | 'grpc',
  status: number,
  flags: number,
  grpcStatus: string,
): Attributes {
  const { name, namespace } = serviceName(service, mesh.deps.serviceNamespace);
  const labels = host?.endpoint.labels;
  return {
    reporter: 'source',
    ...mesh.source,
    destination_service: service,
    destination_service_name: name,
    destination_service_namespace: namespace,
    destination_workload: 'unknown',
    destination_workload_namespace: 'unknown',
    destination_app: labels?.app ?? labels?.['app.kubernetes.io/name'] ?? 'unknown',
    destination_version: labels?.version ?? labels?.['app.kubernetes.io/version'] ?? 'unknown',
    destination_principal: 'unknown',
    destination_cluster: 'unknown',
    request_protocol: protocol,
    response_code: String(status),
    response_flags: formatResponseFlags(flags),
    connection_security_policy: 'unknown',
    grpc_response_status: grpcStatus,
  };
}

export function serviceName(host: string, namespaceOf: (host: string) => string | undefined): { name: string; namespace: string } {
  const svc = host.indexOf('.svc.');
  if (svc > 0) {
    const dot = host.indexOf('.');
    if (dot > 0 && dot < svc) return { name: host.slice(0, dot), namespace: host.slice(dot + 1, svc) };
  }
  return { name: host, namespace: namespaceOf(host) ?? 'unknown' };
}
