import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InboundCapable } from './inbound/inbound-api.js';
import { writeInboundReply } from './inbound/inbound-api.js';

export { meshRequest } from './inbound/inbound-api.js';
export type { InboundCapable, InboundEntry, InboundRequestView } from './inbound/inbound-api.js';
export type { InboundReply, InboundDenialReason } from '../security/inbound/inbound-layer.js';
export type { VerifiedJwt } from '../security/inbound/inbound-request.js';

/** Express's `next`. */
export type NextFunction = (error?: unknown) => void;

/** The request shape Express hands a middleware (its `Request` extends node's). */
interface ExpressRequestLike extends IncomingMessage {
  originalUrl?: string;
}

/**
 * Express 5 middleware: the mesh's inbound path for every request (path normalization,
 * RequestAuthentication, AuthorizationPolicy, inbound rate limits, a server span, the request's
 * deadline in the async context). Mount it first, on the application itself, so that routing
 * sees the normalised path: `app.use(meshMiddleware(mesh))`. `meshRequest(req)` gives the
 * caller's identity and verified JWT.
 */
export function meshMiddleware(mesh: InboundCapable): (req: IncomingMessage, res: ServerResponse, next: NextFunction) => void {
  const inbound = mesh.inbound;
  return (req: ExpressRequestLike, res, next) => {
    // Mounted under a path, Express has already cut `req.url`: the policy must see the whole path.
    const mounted = req.originalUrl !== undefined && req.originalUrl !== req.url;
    inbound.handle(req, res, mounted ? 'refuse' : 'rewrite', {
      proceed: () => {
        if (!mounted) req.originalUrl = req.url;
        next();
      },
      reply: (reply) => writeInboundReply(res, reply),
    });
  };
}
