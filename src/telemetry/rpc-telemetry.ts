import type { Attributes, Context, Span, TextMapSetter } from '@opentelemetry/api';
import type { Host } from '../balancer/index.js';
import type { OutboundRequest, ResponseHandler, Upstream } from '../request-protocol.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import type { MeshTelemetry } from './mesh-telemetry.js';
import { formatResponseFlags, ResponseFlag } from './response-flags.js';
import { istioSourceAttributes } from './request-telemetry.js';
import * as sc from './semconv.js';
import { REQUEST_SPAN_NAME } from './semconv.js';
import { SPAN_KIND_CLIENT, SPAN_KIND_INTERNAL, SPAN_STATUS_ERROR } from './span-codes.js';
import { Tracing } from './tracing-mode.js';

/** What trace context is injected into: grpc-js `Metadata` (only its `set` is used, so grpc-js is not imported here). */
export interface MetadataCarrier {
  set(key: string, value: string): void;
}

const METADATA_SETTER: TextMapSetter<MetadataCarrier> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/**
 * Telemetry of one gRPC call made through the mesh, across its attempts, following the OTel RPC
 * conventions: a CLIENT span per attempt named `package.Service/Method` (children of the caller's
 * span, or of one INTERNAL span of the call when the caller has none and the call may be retried,
 * as HTTP does), `traceparent` injected into each attempt's metadata, and Istio's metrics with
 * `reporter="source"`, `request_protocol="grpc"` once the call ends. Made only when something is recorded.
 *
 * It is the call's observer (the outbound layers' `RequestObserver`, src/outbound/observer.ts):
 * the route, fault, rate-limit and cluster layers report to it as they do for HTTP. Its attempts
 * are recorded by the call itself ({@link startAttempt}), not through `attempt`.
 */
export class RpcTelemetry {
  parent: Context;
  private requestSpan: Span | undefined;
  private readonly startedAt = performance.now();
  private readonly service: string;
  private readonly method: string;
  flags = 0;
  private attempts = 0;
  private retryReason: string | undefined;
  private localReply: string | undefined;
  private route: string | undefined;
  private destination: string | undefined;
  private subset: string | undefined;
  private cluster: string | undefined;
  private host: Host | undefined;
  private done = false;

  constructor(
    readonly mesh: MeshTelemetry,
    readonly path: string,
    /** The host and port written in the `mesh:///` target. */
    private readonly hostname: string,
    private readonly port: number,
  ) {
    this.parent = mesh.api.context.active();
    const names = sc.rpcNames(path);
    this.service = names.service;
    this.method = names.method;
  }

  /** The route and destination chosen (cluster: its `host|subset|port` key). */
  routed(route: string | undefined, destination: string, subset: string | undefined, cluster: string | undefined): void {
    this.route = route;
    this.destination = destination;
    this.subset = subset;
    this.cluster = cluster;
  }

  /** The mesh answers the call itself (`reason`), with Envoy's flag for it. */
  answeredLocally(reason: string, flag: number): void {
    this.localReply = reason;
    this.flags |= flag;
  }

  flag(flag: number): void {
    this.flags |= flag;
  }

  /** The route's fault delayed the call (Envoy's DI). */
  delayed(): void {
    this.flags |= ResponseFlag.DI;
  }

  /** The observer's per-attempt entry: a gRPC call's attempts are recorded by {@link startAttempt}. */
  attempt(): undefined {
    return undefined;
  }

  /** gRPC has no mirroring; a copy would be sent unrecorded. */
  dispatchMirror(target: Upstream, request: OutboundRequest, handler: ResponseHandler): boolean {
    return target.dispatch(request, handler);
  }

  /** A retry was decided after an attempt ended with `reason` (the gRPC status name, or the failure). */
  retrying(reason: string): void {
    this.retryReason = reason;
    this.mesh.metrics.count('retries', { [sc.ATTR_MESH_CLUSTER]: this.cluster ?? '', [sc.ATTR_MESH_DESTINATION]: this.destination ?? this.hostname });
  }

  /** A hedge is sent (our addition): counted as HTTP's are, and its span carries no retry reason. */
  hedging(): void {
    this.retryReason = undefined;
    this.mesh.metrics.count('hedges', { [sc.ATTR_MESH_CLUSTER]: this.cluster ?? '', [sc.ATTR_MESH_DESTINATION]: this.destination ?? this.hostname });
  }

  private startAttributes(): Attributes {
    return {
      [sc.ATTR_RPC_SYSTEM]: 'grpc',
      [sc.ATTR_RPC_SERVICE]: this.service,
      [sc.ATTR_RPC_METHOD]: this.method,
      [sc.ATTR_SERVER_ADDRESS]: this.hostname,
      [sc.ATTR_SERVER_PORT]: this.port,
    };
  }

  private decorate(span: Span): void {
    if (this.route !== undefined) span.setAttribute(sc.ATTR_MESH_ROUTE, this.route);
    if (this.destination !== undefined) span.setAttribute(sc.ATTR_MESH_DESTINATION, this.destination);
    if (this.subset !== undefined) span.setAttribute(sc.ATTR_MESH_SUBSET, this.subset);
    if (this.cluster !== undefined) span.setAttribute(sc.ATTR_MESH_CLUSTER, this.cluster);
  }

  /**
   * An attempt is about to be sent: its CLIENT span (undefined when tracing is off), with its
   * trace context injected into `metadata`. `retry`, given with the first attempt, says whether
   * the call may be sent more than once.
   */
  startAttempt(metadata: MetadataCarrier, retry: RetryPolicy | undefined): Span | undefined {
    const index = this.attempts++;
    const mesh = this.mesh;
    if (mesh.tracing === Tracing.Off) return undefined;
    if (index === 0 && retry !== undefined && retry.numRetries > 0) this.openRequestSpan();
    const span = mesh.tracer.startSpan(this.path.slice(1), { kind: SPAN_KIND_CLIENT, attributes: this.startAttributes() }, this.parent);
    if (span.isRecording()) {
      this.decorate(span);
      if (index > 0) span.setAttribute(sc.ATTR_MESH_RESEND_COUNT, index);
      if (this.retryReason !== undefined) span.setAttribute(sc.ATTR_MESH_RETRY_REASON, this.retryReason);
    }
    this.retryReason = undefined;
    mesh.api.propagation.inject(mesh.api.trace.setSpan(this.parent, span), metadata, METADATA_SETTER);
    return span;
  }

  /** The balancer placed the attempt on `host`. */
  picked(span: Span | undefined, host: Host): void {
    this.host = host;
    if (!span?.isRecording()) return;
    span.setAttribute(sc.ATTR_NETWORK_PEER_ADDRESS, host.endpoint.address);
    span.setAttribute(sc.ATTR_NETWORK_PEER_PORT, host.endpoint.port);
  }

  /** An attempt ended with the gRPC `code`: a client span is an error for any status but OK. */
  attemptEnded(span: Span | undefined, code: number, details: string): void {
    if (!span) return;
    if (span.isRecording()) {
      span.setAttribute(sc.ATTR_RPC_GRPC_STATUS_CODE, code);
      if (code !== 0) {
        span.setAttribute(sc.ATTR_ERROR_TYPE, String(code));
        span.setStatus({ code: SPAN_STATUS_ERROR, message: details });
      }
    }
    span.end();
  }

  private openRequestSpan(): void {
    const api = this.mesh.api;
    const caller = api.trace.getSpanContext(this.parent);
    if (caller !== undefined && api.isSpanContextValid(caller)) return;
    const span = this.mesh.tracer.startSpan(REQUEST_SPAN_NAME, { kind: SPAN_KIND_INTERNAL, startTime: performance.timeOrigin + this.startedAt }, this.parent);
    this.requestSpan = span;
    this.parent = api.trace.setSpan(this.parent, span);
  }

  /**
   * The call ended with `code` as the caller sees it. `httpStatus` is Envoy's `response_code`:
   * 200 for a status a pod sent, the local reply's HTTP status for one the mesh made.
   */
  finish(code: number, details: string, httpStatus: number, bytes?: { readonly sent: number; readonly received: number }): void {
    if (this.done) return;
    this.done = true;
    const mesh = this.mesh;
    if (mesh.tracing !== Tracing.Off) {
      // Answered by the mesh before any attempt: a span of its own, so operators see it.
      if (this.attempts === 0) this.localSpan(code, details);
      if (this.requestSpan !== undefined) this.endRequestSpan(code, details);
    }
    if (mesh.metrics.current?.istioRequests) this.recordIstio(code, httpStatus, bytes);
  }

  private endRequestSpan(code: number, details: string): void {
    const span = this.requestSpan!;
    if (span.isRecording()) {
      span.setAttribute(sc.ATTR_MESH_ATTEMPTS, this.attempts);
      span.setAttribute(sc.ATTR_RPC_GRPC_STATUS_CODE, code);
      if (this.flags !== 0) span.setAttribute(sc.ATTR_MESH_RESPONSE_FLAGS, formatResponseFlags(this.flags));
      if (code !== 0) span.setStatus({ code: SPAN_STATUS_ERROR, message: details });
    }
    span.end();
  }

  private localSpan(code: number, details: string): void {
    const attributes = this.startAttributes();
    attributes[sc.ATTR_RPC_GRPC_STATUS_CODE] = code;
    if (this.localReply !== undefined) attributes[sc.ATTR_MESH_LOCAL_REPLY] = this.localReply;
    if (this.flags !== 0) attributes[sc.ATTR_MESH_RESPONSE_FLAGS] = formatResponseFlags(this.flags);
    if (this.flags & ResponseFlag.FI) attributes[sc.ATTR_MESH_FAULT_ABORT] = true;
    const span = this.mesh.tracer.startSpan(
      this.path.slice(1),
      { kind: SPAN_KIND_CLIENT, startTime: performance.timeOrigin + this.startedAt, attributes },
      this.parent,
    );
    this.decorate(span);
    if (code !== 0) {
      span.setAttribute(sc.ATTR_ERROR_TYPE, String(code));
      span.setStatus({ code: SPAN_STATUS_ERROR, message: details });
    }
    span.end();
  }

  /**
   * Istio's standard metrics for the call, labelled as a sidecar with `reporter="source"`; the
   * body sizes are the serialized messages of the attempt that ended it, each with its 5-byte prefix.
   */
  private recordIstio(code: number, httpStatus: number, bytes: { readonly sent: number; readonly received: number } | undefined): void {
    const m = this.mesh.metrics.current!;
    const attributes = istioSourceAttributes(this.mesh, this.destination ?? this.hostname, this.host, 'grpc', httpStatus, this.flags, String(code));
    m.istioRequests!.add(1, attributes);
    m.istioDuration!.record(performance.now() - this.startedAt, attributes);
    m.istioRequestBytes!.record(bytes?.sent ?? 0, attributes);
    m.istioResponseBytes!.record(bytes?.received ?? 0, attributes);
  }
}
