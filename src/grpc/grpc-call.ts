import type { Metadata, StatusObject } from '@grpc/grpc-js';
import type { IncomingHttpHeaders } from 'node:http';
import type { MeshClock, RandomSource } from '../clock.js';
import type { AttemptPolicy } from '../outbound/attempts/attempt-engine.js';
import type { Origin } from '../outbound/call.js';
import { OutboundCall } from '../outbound/call.js';
import type { OutboundContext } from '../outbound/context.js';
import type { RequestObserver } from '../outbound/observer.js';
import type { OutboundRequest, RequestController, ResponseHandler } from '../request-protocol.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import type { HeaderOps } from '../routing/route-actions.js';
import { GrpcNoRouteError, GrpcTlsPortError } from './errors.js';
import { errorStatus, replyStatus } from './local-status.js';

/** The side of a gRPC call that runs its attempts (`MeshCall`, src/grpc/client-interceptor.ts). */
export interface GrpcCallOwner {
  /** The route is decided (the call's fields say how): the attempts start, unless the call ended meanwhile. */
  begin(call: GrpcCall): void;
  /** The mesh answers the call itself: now, or (`later`) on a later turn of the event loop, as a network answer would come. */
  answer(status: StatusObject, later: boolean): void;
}

/** A gRPC call's request as the layers see it: only its method; the path and metadata are on the call. */
const GRPC_REQUEST: OutboundRequest = Object.freeze({ method: 'POST', path: '' });
const NO_OPS: readonly HeaderOps[] = Object.freeze([]);
const NO_HANDLER: ResponseHandler = Object.freeze({});

/** A metadata key's text values, joined as HTTP/2 would carry repeated headers. */
function textOf(metadata: Metadata, name: string): string | undefined {
  const values = metadata.get(name);
  if (values.length === 0) return undefined;
  if (values.length === 1) return typeof values[0] === 'string' ? values[0] : undefined;
  const text = values.filter((v): v is string => typeof v === 'string');
  return text.length === 0 ? undefined : text.join(',');
}

/**
 * A gRPC call on its way through the outbound layers (the HTTP path's, src/outbound/stack.ts
 * `grpcOutboundStack`): the protocol side of the call. Route matching reads it as a request with
 * method POST, the call's method path, `content-type: application/grpc` and its metadata as
 * headers, read only when a route asks. It is its own handler: the mesh's local replies become
 * gRPC statuses ({@link replyStatus}), a local error the mesh's status for it. Hosts no
 * configuration covers and TLS ports are refused: a gRPC call has no pass-through and makes no
 * TLS of its own. Once routed, it is the attempt engine's policy (retries, hash, hedging).
 */
export class GrpcCall extends OutboundCall implements AttemptPolicy, ResponseHandler {
  /** The caller's metadata; a copy once the route's rules changed it. */
  metadata: Metadata;
  readonly clock: MeshClock;
  readonly random: RandomSource;

  // ---- decided by the gRPC layer (src/grpc/grpc-call-layer.ts) ----
  retry: RetryPolicy | undefined = undefined;
  avoidPreviousHosts = false;
  hedgeAfterMs = 0;
  /** The route's and destination's `headers.response` rules, for the response metadata. */
  responseOps: readonly HeaderOps[] = NO_OPS;
  /** The `:authority` a `rewrite.authority` or `host` header rule gives the call, else undefined (the target's). */
  sentAuthority: string | undefined = undefined;
  /** The method path a route's `rewrite` sends instead of the caller's, else undefined. */
  sentPath: string | undefined = undefined;
  /** When the call ends (epoch ms): the caller's deadline, then the sooner of it, the route timeout and the inbound deadline. */
  deadlineAt: number;

  // ---- a local reply, as the layers deliver it ----
  private replyCode = 0;
  private replyHeaders: IncomingHttpHeaders | undefined = undefined;
  private replyBody = '';

  constructor(
    readonly owner: GrpcCallOwner,
    ctx: OutboundContext,
    origin: Origin,
    metadata: Metadata,
    path: string,
    /** The caller streams its messages: no hedging (a hedge resends the whole request). */
    readonly requestStream: boolean,
    observer: RequestObserver,
    deadlineAt: number,
  ) {
    super(GRPC_REQUEST, NO_HANDLER, origin);
    this.handler = this;
    this.method = 'POST';
    this.path = path;
    this.metadata = metadata;
    this.observer = observer;
    this.clock = ctx.clock;
    this.random = ctx.random;
    this.deadlineAt = deadlineAt;
  }

  /** Nothing to parse: method, path and query are set, the metadata is read on demand. */
  override parse(): void {}

  override header(name: string): string | undefined {
    if (name === ':authority' || name === 'host') return this.authority;
    if (name === ':path') return this.path;
    if (name === ':method') return 'POST';
    if (name === 'content-type') return 'application/grpc';
    return textOf(this.metadata, name);
  }

  override unknownHostRefusal(serviceHost: string): Error {
    return new GrpcNoRouteError(
      `no service ${serviceHost} in the mesh (from the gRPC target mesh:///${this.authority}); calls to hosts outside the mesh's registry are not supported over gRPC`,
    );
  }

  override tlsPortRefusal(protocol: string): Error {
    // This channel is plaintext: the call is refused rather than sent there in the clear.
    return new GrpcTlsPortError(`${this.serviceHost} port ${this.port}`, protocol);
  }

  // ---- the mesh's local replies (ResponseHandler) ----

  onResponseStart(_controller: RequestController, status: number, headers: IncomingHttpHeaders): void {
    this.replyCode = status;
    this.replyHeaders = headers;
  }

  onResponseData(_controller: RequestController, chunk: Buffer): void {
    this.replyBody += chunk.toString();
  }

  onResponseEnd(): void {
    this.owner.answer(replyStatus(this, this.replyCode, this.replyHeaders ?? {}, this.replyBody), false);
  }

  onResponseError(_controller: RequestController, error: Error): void {
    this.owner.answer(errorStatus(error), false);
  }
}
