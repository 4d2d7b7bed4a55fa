import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { InboundCapable } from './inbound/inbound-api.js';
import { writeInboundReply } from './inbound/inbound-api.js';

export { meshRequest } from './inbound/inbound-api.js';
export type { InboundCapable, InboundEntry, InboundRequestView } from './inbound/inbound-api.js';
export type { InboundReply, InboundDenialReason } from '../security/inbound/inbound-layer.js';
export type { VerifiedJwt } from '../security/inbound/inbound-request.js';

type Request = IncomingMessage | Http2ServerRequest;
type Response = ServerResponse | Http2ServerResponse;

/**
 * Wraps a node:http (or node:http2 compatibility) request handler: every request goes through
 * the mesh's inbound path first (path normalization, RequestAuthentication, AuthorizationPolicy,
 * inbound rate limits, a server span, the request's deadline in the async context); `handler`
 * runs only for admitted requests and sees the normalised path in `req.url`. Works for anything
 * built on node's request listener: Koa's `app.callback()`, Hono's node adapter, ...
 *
 * ```ts
 * http.createServer(withMesh(mesh, (req, res) => res.end('ok'))).listen(8080);
 * ```
 */
export function withMesh<Req extends Request = IncomingMessage, Res extends Response = ServerResponse>(
  mesh: InboundCapable,
  handler: (req: Req, res: Res) => void,
): (req: Req, res: Res) => void {
  const inbound = mesh.inbound;
  return (req, res) => {
    inbound.handle(req, res, 'rewrite', {
      proceed: () => handler(req, res),
      reply: (reply) => writeInboundReply(res, reply),
    });
  };
}
