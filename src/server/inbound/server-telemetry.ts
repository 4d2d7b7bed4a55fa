import type { Attributes, Context, Span, TextMapGetter } from '@opentelemetry/api';
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { MeshTelemetry } from '../../telemetry/mesh-telemetry.js';
import { formatResponseFlags } from '../../telemetry/response-flags.js';
import * as sc from '../../telemetry/semconv.js';
import { Tracing } from '../../telemetry/tracing-mode.js';
import type { InboundReply } from '../../security/inbound/inbound-layer.js';
import type { InboundRequest } from '../../security/inbound/inbound-request.js';

const SPAN_KIND_SERVER = 1;
const SPAN_STATUS_ERROR = 2;

/**
 * gRPC statuses that make a SERVER span an error, as the RPC conventions list them (the others,
 * such as NOT_FOUND or PERMISSION_DENIED, are the caller's doing).
 */
const GRPC_SERVER_ERRORS: ReadonlySet<number> = new Set([2, 4, 12, 13, 14, 15]);

const HEADER_GETTER: TextMapGetter<InboundRequest['headers']> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/** The workload's own identity, for Istio's `destination_*` labels. */
export interface DestinationLabels {
  readonly destination_workload: string;
  readonly destination_workload_namespace: string;
  readonly destination_principal: string;
  readonly destination_app: string;
  readonly destination_version: string;
  readonly destination_service_namespace: string;
}

/**
 * The server side of telemetry for one inbound request: a SERVER span (the caller's trace
 * context extracted from the headers; or, when an HTTP instrumentation already made the server
 * span, that span enriched), `http.server.request.duration`, and Istio's metrics as a sidecar
 * reports them with `reporter="destination"`. Recorded when the response finishes or the
 * connection closes.
 */
export class ServerExchange {
  readonly context: Context | undefined;
  private readonly span: Span | undefined;
  private readonly startedAt = performance.now();
  private reply: InboundReply | undefined;
  private ended = false;
  /** A gRPC call (`content-type: application/grpc`): an RPC span, and Istio's `request_protocol="grpc"`. */
  private readonly grpc: boolean;

  constructor(
    private readonly mesh: MeshTelemetry,
    private readonly request: InboundRequest,
    private readonly destination: () => DestinationLabels,
    res: ServerResponse | Http2ServerResponse,
  ) {
    const api = mesh.api;
    this.grpc = request.header('content-type')?.startsWith('application/grpc') === true;
    if (mesh.tracing !== Tracing.Off) {
      const active = api.context.active();
      const existing = api.trace.getSpan(active);
      if (existing?.isRecording()) {
        // An HTTP instrumentation made the server span already: ours would be a duplicate.
        this.span = existing;
        this.context = undefined;
        existing.setAttribute('sidecarless.inbound', true);
      } else {
        const parent = api.propagation.extract(active, request.headers, HEADER_GETTER);
        // A gRPC call's span is an RPC span: `package.Service/Method`, with the rpc.* attributes.
        this.span = this.grpc
          ? mesh.tracer.startSpan(request.path.slice(1), { kind: SPAN_KIND_SERVER, attributes: this.rpcAttributes() }, parent)
          : mesh.tracer.startSpan(request.method, { kind: SPAN_KIND_SERVER, attributes: this.httpAttributes() }, parent);
        this.context = api.trace.setSpan(parent, this.span);
      }
    }
    const end = (): void => this.end(res);
    res.once('finish', end);
    res.once('close', end);
  }

  private httpAttributes(): Attributes {
    const request = this.request;
    const attributes: Attributes = {
      [sc.ATTR_HTTP_REQUEST_METHOD]: sc.semconvMethod(request.method),
      [sc.ATTR_URL_PATH]: request.path,
      [sc.ATTR_URL_SCHEME]: request.scheme,
      [sc.ATTR_SERVER_PORT]: request.port,
      [sc.ATTR_CLIENT_ADDRESS]: request.remoteIp,
      [sc.ATTR_NETWORK_PEER_ADDRESS]: request.sourceIp,
    };
    if (request.query !== '') attributes[sc.ATTR_URL_QUERY] = request.query;
    const host = request.host;
    if (host !== '') attributes[sc.ATTR_SERVER_ADDRESS] = host.replace(/:\d+$/, '');
    const agent = request.header('user-agent');
    if (agent !== undefined) attributes[sc.ATTR_USER_AGENT_ORIGINAL] = agent;
    if (attributes[sc.ATTR_HTTP_REQUEST_METHOD] === '_OTHER') attributes[sc.ATTR_HTTP_REQUEST_METHOD_ORIGINAL] = request.method;
    return attributes;
  }

  private rpcAttributes(): Attributes {
    const request = this.request;
    const names = sc.rpcNames(request.path);
    const attributes: Attributes = {
      [sc.ATTR_RPC_SYSTEM]: 'grpc',
      [sc.ATTR_RPC_SERVICE]: names.service,
      [sc.ATTR_RPC_METHOD]: names.method,
      [sc.ATTR_SERVER_PORT]: request.port,
      [sc.ATTR_CLIENT_ADDRESS]: request.remoteIp,
      [sc.ATTR_NETWORK_PEER_ADDRESS]: request.sourceIp,
    };
    const host = request.host;
    if (host !== '') attributes[sc.ATTR_SERVER_ADDRESS] = host.replace(/:\d+$/, '');
    return attributes;
  }

  /** The mesh answered the request itself (denied, rate limited...). */
  answered(reply: InboundReply): void {
    this.reply = reply;
  }

  private end(res: ServerResponse | Http2ServerResponse): void {
    if (this.ended) return;
    this.ended = true;
    const status = res.headersSent || this.reply ? res.statusCode : 0;
    const span = this.span;
    if (this.grpc && span?.isRecording()) {
      this.endRpcSpan(span, res);
    } else if (span?.isRecording()) {
      if (status > 0) span.setAttribute(sc.ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (this.reply) {
        span.setAttribute(sc.ATTR_MESH_LOCAL_REPLY, this.reply.reason);
        if (this.reply.decidedBy) span.setAttribute('sidecarless.authz.policy', this.reply.decidedBy);
      }
      if (status >= 500 || status === 0) {
        span.setAttribute(sc.ATTR_ERROR_TYPE, status === 0 ? 'aborted' : String(status));
        span.setStatus({ code: SPAN_STATUS_ERROR });
      }
      if (this.context !== undefined) span.end();
    }
    const m = this.mesh.metrics.current;
    if (!m) return;
    const seconds = (performance.now() - this.startedAt) / 1000;
    if (this.mesh.httpMetrics) {
      const attributes: Attributes = {
        [sc.ATTR_HTTP_REQUEST_METHOD]: sc.semconvMethod(this.request.method),
        [sc.ATTR_URL_SCHEME]: this.request.scheme,
      };
      if (status > 0) attributes[sc.ATTR_HTTP_RESPONSE_STATUS_CODE] = status;
      if (status >= 500 || status === 0) attributes[sc.ATTR_ERROR_TYPE] = status === 0 ? 'aborted' : String(status);
      m.serverDuration.record(seconds, attributes);
    }
    if (m.istioRequests) this.recordIstio(status, seconds * 1000, res);
  }

  /** The call's gRPC status on its span: an error only for the statuses the conventions list for servers. */
  private endRpcSpan(span: Span, res: ServerResponse | Http2ServerResponse): void {
    const header = res.getHeader('grpc-status');
    const code = header === undefined ? undefined : Number(header);
    if (code !== undefined) span.setAttribute(sc.ATTR_RPC_GRPC_STATUS_CODE, code);
    if (this.reply) {
      span.setAttribute(sc.ATTR_MESH_LOCAL_REPLY, this.reply.reason);
      if (this.reply.decidedBy) span.setAttribute('sidecarless.authz.policy', this.reply.decidedBy);
    }
    if (code === undefined || GRPC_SERVER_ERRORS.has(code)) {
      span.setAttribute(sc.ATTR_ERROR_TYPE, code === undefined ? 'aborted' : String(code));
      span.setStatus({ code: SPAN_STATUS_ERROR });
    }
    if (this.context !== undefined) span.end();
  }

  private recordIstio(status: number, ms: number, res: ServerResponse | Http2ServerResponse): void {
    const m = this.mesh.metrics.current!;
    const peer = this.request.peer;
    const d = this.destination();
    const host = this.request.host.replace(/:\d+$/, '');
    const grpc = this.request.header('content-type')?.startsWith('application/grpc') === true;
    const grpcStatus = grpc ? String(res.getHeader('grpc-status') ?? '') : '';
    const attributes: Attributes = {
      reporter: 'destination',
      source_workload: 'unknown',
      source_workload_namespace: peer?.namespace ?? 'unknown',
      source_principal: peer?.spiffeId ?? 'unknown',
      source_app: 'unknown',
      source_version: 'unknown',
      destination_workload: d.destination_workload,
      destination_workload_namespace: d.destination_workload_namespace,
      destination_principal: d.destination_principal,
      destination_app: d.destination_app,
      destination_version: d.destination_version,
      destination_service: host || 'unknown',
      destination_service_name: host.split('.')[0] || 'unknown',
      destination_service_namespace: d.destination_service_namespace,
      destination_cluster: 'unknown',
      request_protocol: grpc ? 'grpc' : 'http',
      response_code: String(status),
      response_flags: formatResponseFlags(this.reply?.flags ?? 0),
      connection_security_policy: peer ? 'mutual_tls' : 'none',
      grpc_response_status: grpcStatus,
    };
    m.istioRequests!.add(1, attributes);
    m.istioDuration!.record(ms, attributes);
    m.istioRequestBytes!.record(Number(this.request.header('content-length') ?? 0) || 0, attributes);
    m.istioResponseBytes!.record(Number(res.getHeader('content-length') ?? 0) || 0, attributes);
  }
}

/** Starts the telemetry of an inbound request, or undefined when nothing would be recorded. */
export function beginServerExchange(
  mesh: MeshTelemetry | undefined,
  request: InboundRequest,
  destination: () => DestinationLabels,
  res: ServerResponse | Http2ServerResponse,
): ServerExchange | undefined {
  if (!mesh) return undefined;
  mesh.recheckIfDue();
  if (mesh.tracing === Tracing.Off && mesh.metrics.current === undefined) return undefined;
  return new ServerExchange(mesh, request, destination, res);
}
