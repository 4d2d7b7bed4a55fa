import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Duplex, Readable } from 'node:stream';

// The protocol the outbound layers speak among themselves: a request, the handler its response
// events go to, and the controller the handler uses to pause or abort it. It has undici's handler
// shape (so an undici handler is one of ours and ours is one of undici's, with no adapter on the
// hot path), but the layers name only these types: `transport/` alone speaks to undici, and a
// gRPC transport can carry the same layers.

/** Request headers as a caller gives them: an object, a flat [name, value, ...] list, or pairs. */
export type RequestHeadersInit =
  | Record<string, string | string[] | undefined>
  | IncomingHttpHeaders
  | OutgoingHttpHeaders
  | string[]
  | Iterable<[string, string | string[] | undefined]>
  | null;

/**
 * A request body as the transport takes it: bytes, a string, a stream (wrapped for replay first),
 * or another object the transport encodes (a FormData, an iterable).
 */
export type RequestBody = string | Uint8Array | Readable | object | null;

/** One request, as the caller handed it to the mesh and as each layer passes it on. */
export interface OutboundRequest {
  /** `scheme://host[:port]`: where the request goes (the transport's pool decides for a cluster). */
  readonly origin?: string | URL;
  /** Path and query. */
  readonly path: string;
  readonly method: string;
  readonly body?: RequestBody;
  readonly headers?: RequestHeadersInit;
  readonly upgrade?: boolean | string | null;
  /** The TLS server name, when the transport is to present one other than the origin's host. */
  readonly servername?: string;
}

/** What a handler uses to pause, resume or abort the request it is being told about. */
export interface RequestController {
  readonly aborted: boolean;
  readonly paused: boolean;
  readonly reason: Error | null;
  /** Headers as received, for callers (undici's fetch) that read them in wire order. */
  rawHeaders?: Buffer[] | string[] | IncomingHttpHeaders | null;
  rawTrailers?: Buffer[] | string[] | IncomingHttpHeaders | null;
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

/** Where a request's events go: started, upgraded, the response's head, data, end, or an error. */
export interface ResponseHandler {
  onRequestStart?(controller: RequestController, context: unknown): void;
  onRequestUpgrade?(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void;
  onResponseStart?(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void;
  onResponseData?(controller: RequestController, chunk: Buffer): void;
  onResponseEnd?(controller: RequestController, trailers: IncomingHttpHeaders): void;
  onResponseError?(controller: RequestController, error: Error): void;
}

/** Something that sends requests: a connection pool, an agent, a layer. */
export interface Upstream {
  /** Takes the request; its events go to `handler`. false: busy (the caller may wait for drain). */
  dispatch(request: OutboundRequest, handler: ResponseHandler): boolean;
}
