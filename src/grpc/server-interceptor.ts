import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import { X509Certificate } from 'node:crypto';
import { Metadata, ServerInterceptingCall } from '@grpc/grpc-js';
import type { ServerInterceptingCallInterface, ServerInterceptor, StatusObject } from '@grpc/grpc-js';
import { formatGrpcTimeout } from '../resilience/deadline.js';
import { attachPeerIdentity, makePeerIdentity } from '../security/peer-identity.js';
import { spiffeIdOf } from '../security/spiffe-id.js';
import type { TrustDomains } from '../security/spiffe-id.js';
import type { InboundEntry } from '../server/inbound/inbound-api.js';
import type { InboundReply } from '../security/inbound/inbound-layer.js';
import { GrpcCode } from './grpc-status.js';
import type { GrpcMeshCore } from './mesh-core.js';

type NodeRequestLike = Parameters<InboundEntry['handle']>[0];
type NodeResponseLike = Parameters<InboundEntry['handle']>[1];

/** The gRPC status of a reply the mesh gives instead of the service (Envoy's RBAC, JWT and rate-limit filters). */
function grpcStatusOf(reply: InboundReply): number {
  switch (reply.reason) {
    case 'rbac':
    case 'ext_authz':
      return reply.status === 401 ? GrpcCode.UNAUTHENTICATED : GrpcCode.PERMISSION_DENIED;
    case 'jwt':
      return reply.status === 403 ? GrpcCode.PERMISSION_DENIED : GrpcCode.UNAUTHENTICATED;
    case 'rate_limit':
      return GrpcCode.RESOURCE_EXHAUSTED;
    default:
      return GrpcCode.INTERNAL;
  }
}

/**
 * The socket-like view the inbound path reads: addresses, TLS, and the verified peer identity;
 * a string when the peer's SPIFFE ID is of a trust domain the mesh does not accept.
 */
function socketOf(call: ServerInterceptingCallInterface, trustDomains: TrustDomains | undefined): object | string {
  const info = call.getConnectionInfo();
  const auth = call.getAuthContext();
  const socket = {
    remoteAddress: info.remoteAddress,
    remotePort: info.remotePort,
    localAddress: info.localAddress,
    localPort: info.localPort,
    encrypted: auth.transportSecurityType === 'ssl',
  };
  // grpc-js hands the certificate only when the handshake verified it against the server's roots.
  const raw = auth.sslPeerCertificate?.raw;
  if (raw) {
    const certificate = new X509Certificate(raw);
    const id = spiffeIdOf(certificate);
    if (id && trustDomains && !trustDomains.accepts(id)) {
      return `the client's trust domain "${id.trustDomain}" (${id.uri}) is not accepted; accepted: ${[...trustDomains.all].join(', ')}`;
    }
    if (id) attachPeerIdentity(socket, makePeerIdentity(id, certificate));
  }
  return socket;
}

/** The request the inbound path (shared with Express, Fastify, node:http) reads, made from the call. */
function requestOf(path: string, metadata: Metadata, call: ServerInterceptingCallInterface, socket: object): NodeRequestLike {
  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  for (const [name, value] of Object.entries(metadata.toHttp2Headers())) {
    const text = Array.isArray(value) ? value.join(',') : String(value);
    headers[name] = text;
    rawHeaders.push(name, text);
  }
  headers[':authority'] = call.getHost();
  headers['content-type'] = 'application/grpc';
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  // grpc-js takes grpc-timeout out of the metadata; the inbound path reads the caller's deadline from it.
  if (Number.isFinite(at)) headers['grpc-timeout'] = formatGrpcTimeout(at - Date.now());
  return { method: 'POST', url: path, headers, rawHeaders, headersDistinct: {}, socket } as unknown as NodeRequestLike;
}

/** gRPC's 5-byte message prefix (compressed flag, length): part of the body Envoy counts. */
const FRAME_PREFIX = 5;

/**
 * The call's body sizes for Istio's `istio_request_bytes` / `istio_response_bytes`, which the
 * inbound path reads as the request's and response's `content-length`: the request's DATA bytes
 * as they arrive (from grpc-js's HTTP/2 stream, when this interceptor is the innermost one, as a
 * server with only the mesh's has it), each response message serialized, with its prefix.
 */
class CallBytes {
  received = 0;
  sent = 0;
  /** The request the inbound path reads, once the call's metadata made it. */
  request: NodeRequestLike | undefined;

  constructor(call: ServerInterceptingCallInterface) {
    // grpc-js's own call (the innermost) keeps its HTTP/2 stream; another interceptor's has none.
    const stream = (call as { stream?: unknown }).stream;
    if (stream instanceof EventEmitter) stream.on('data', (chunk: Buffer) => (this.received += chunk.length));
  }

  sentMessage(bytes: Buffer): void {
    this.sent += bytes.length + FRAME_PREFIX;
  }

  /** Written where the inbound path's telemetry reads the sizes, just before it records them. */
  settle(response: CallResponse): void {
    if (this.request) this.request.headers['content-length'] = String(this.received);
    response.setHeader('content-length', String(this.sent));
  }
}

/** Enough of a response for the server span and metrics: they read the status when it ends. */
class CallResponse extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  /** Counted when Istio's metrics are recorded. */
  bytes: CallBytes | undefined;
  private readonly headers = new Map<string, unknown>();
  setHeader(name: string, value: unknown): this {
    this.headers.set(name.toLowerCase(), value);
    return this;
  }
  getHeader(name: string): unknown {
    return this.headers.get(name.toLowerCase());
  }
  ended(status: StatusObject | { code: number }): void {
    if (this.headersSent) return;
    this.bytes?.settle(this);
    this.setHeader('grpc-status', String(status.code));
    this.headersSent = true;
    this.emit('finish');
  }
}

/**
 * A grpc-js server interceptor (the `interceptors` server option, grpc-js 1.10+) running each call
 * through the mesh's inbound path: the caller's mTLS identity, RequestAuthentication on metadata,
 * AuthorizationPolicy on the gRPC path (`/package.Service/Method`, method POST), inbound rate
 * limits answering RESOURCE_EXHAUSTED, and the handler run with the call's deadline in the async
 * context, so calls it makes through the mesh inherit it.
 */
export function meshServerInterceptor(mesh: {
  readonly inbound: InboundEntry;
  /** @internal */
  grpcCore?(): GrpcMeshCore;
}): ServerInterceptor {
  const inbound = mesh.inbound;
  const core = mesh.grpcCore?.();
  const trustDomains = core?.trustDomains;
  return (method, call) => {
    let run: ((fn: () => void) => void) | undefined;
    const response = new CallResponse();
    // Made now, before any of the request's DATA arrives; the request it writes to comes with the metadata.
    const bytes = core?.telemetry()?.istioRecording === true ? new CallBytes(call) : undefined;
    response.bytes = bytes;
    const within = (fn: () => void): void => (run ? run(fn) : fn());
    return new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, proceed) => {
            const socket = socketOf(call, trustDomains);
            if (typeof socket === 'string') {
              // As mesh.secureServer refuses such a connection: the caller is not of this mesh.
              response.ended({ code: GrpcCode.UNAUTHENTICATED });
              call.sendStatus({ code: GrpcCode.UNAUTHENTICATED, details: socket, metadata: new Metadata() });
              return;
            }
            const req = requestOf(method.path, metadata, call, socket);
            if (bytes) bytes.request = req;
            inbound.handle(req, response as unknown as NodeResponseLike, 'refuse', {
              proceed: () => {
                // The handler runs later, from grpc-js's own callbacks: it gets this context back.
                const snapshot = AsyncLocalStorage.snapshot();
                run = (fn) => snapshot(fn);
                proceed(metadata);
              },
              reply: (reply) => {
                const code = grpcStatusOf(reply);
                response.ended({ code });
                const trailers = new Metadata();
                if (reply.decidedBy) trailers.set('x-sidecarless-decided-by', reply.decidedBy);
                call.sendStatus({ code, details: reply.body || reply.reason, metadata: trailers });
              },
            });
          },
          onReceiveMessage: (message, proceed) => within(() => proceed(message)),
          onReceiveHalfClose: (proceed) => within(() => proceed()),
          onCancel: () => response.ended({ code: GrpcCode.CANCELLED }),
        });
      },
      sendStatus: (status, proceed) => {
        response.ended(status);
        proceed(status);
      },
      // Only when counting: the message serialized once more, as grpc-js sends it, for its size.
      ...(bytes && {
        sendMessage: (message: unknown, proceed: (message: unknown) => void) => {
          bytes.sentMessage(method.responseSerialize(message));
          proceed(message);
        },
      }),
    });
  };
}
