import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { PeerIdentity } from '../../security/peer-identity.js';
import type { InboundReply } from '../../security/inbound/inbound-layer.js';
import type { VerifiedJwt } from '../../security/inbound/inbound-request.js';

/**
 * What the application (and a CUSTOM authorizer) reads of an inbound request the mesh admitted:
 * the normalised path, the caller's mTLS identity, the verified JWT.
 */
export interface InboundRequestView {
  readonly method: string;
  /** Normalised per `meshConfig.pathNormalization`, without query. */
  readonly path: string;
  /** Without `?`; '' when none. */
  readonly query: string;
  readonly host: string;
  /** The port the request came in on. */
  readonly port: number;
  /** The connection's peer address (`source.ip`). */
  readonly sourceIp: string;
  /** The client address from `x-forwarded-for` (`remote.ip`). */
  readonly remoteIp: string;
  /** The verified mTLS identity of the caller; undefined in plaintext. */
  readonly peer: PeerIdentity | undefined;
  /** The JWT RequestAuthentication verified; undefined without one. */
  readonly jwt: VerifiedJwt | undefined;
  /** A header's value, repeated headers joined by `,`; `name` lower-case. */
  header(name: string): string | undefined;
}

/** How an integration hands over an admitted request, or writes the mesh's answer. */
export interface InboundHandlersLike {
  proceed(): void;
  reply(reply: InboundReply): void;
}

/** The mesh's inbound entry point, as the integrations use it (`mesh.inbound`). */
export interface InboundEntry {
  handle(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
    rewrite: 'rewrite' | 'refuse',
    handlers: InboundHandlersLike,
  ): void;
}

/** Anything with the mesh's inbound entry point: a `Mesh` from `createMesh`. */
export interface InboundCapable {
  readonly inbound: InboundEntry;
}

const REQUEST_VIEW = Symbol.for('sidecarless.inboundRequest.v1');

/**
 * The mesh's view of a request an integration admitted (identity, JWT, normalised path), or
 * undefined for a request that did not go through one.
 */
export function meshRequest(req: object): InboundRequestView | undefined {
  return (req as Record<symbol, InboundRequestView | undefined>)[REQUEST_VIEW];
}

/** Writes the mesh's answer on a node:http or node:http2 response. */
export function writeInboundReply(res: ServerResponse | Http2ServerResponse, reply: InboundReply): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = reply.status;
  for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value as string | string[]);
  res.setHeader('content-length', Buffer.byteLength(reply.body));
  (res as ServerResponse).end(reply.body);
}
