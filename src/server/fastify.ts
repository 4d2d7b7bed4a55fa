import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { InboundCapable, InboundRequestView } from './inbound/inbound-api.js';
import { meshRequest } from './inbound/inbound-api.js';

export { meshRequest } from './inbound/inbound-api.js';
export type { InboundCapable, InboundEntry, InboundRequestView } from './inbound/inbound-api.js';
export type { InboundReply, InboundDenialReason } from '../security/inbound/inbound-layer.js';
export type { VerifiedJwt } from '../security/inbound/inbound-request.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The mesh's view of the request: the caller's identity, the verified JWT, the normalised path. */
    mesh: InboundRequestView | null;
  }
}

export interface MeshPluginOptions {
  readonly mesh: InboundCapable;
}

/**
 * The Fastify 5 plugin: an `onRequest` hook runs the mesh's inbound path for every request of
 * the instance (it is not encapsulated, as `fastify-plugin` would make it), and `request.mesh`
 * carries the caller's identity and verified JWT.
 *
 * Fastify routes before `onRequest` runs: give the server `rewriteUrl: meshRewriteUrl(mesh)` so
 * routing sees the normalised path, as behind a sidecar. Without it, a request whose path
 * normalises differently (`/a/../b`) is refused with 400 rather than routed on the raw path.
 */
export const meshPlugin: FastifyPluginCallback<MeshPluginOptions> = (fastify: FastifyInstance, options: MeshPluginOptions, done) => {
  const inbound = options.mesh?.inbound;
  if (!inbound) {
    done(new TypeError('sidecarless/fastify: register the plugin with { mesh } (a mesh from createMesh)'));
    return;
  }
  fastify.decorateRequest('mesh', null);
  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, next: (error?: Error) => void) => {
    inbound.handle(request.raw, reply.raw, 'refuse', {
      proceed: () => {
        request.mesh = meshRequest(request.raw) ?? null;
        next();
      },
      reply: (answer) => {
        void reply
          .code(answer.status)
          .headers(answer.headers as Record<string, string>)
          .send(answer.body);
      },
    });
  });
  done();
};

// What fastify-plugin sets: the hook applies to the whole instance, not just an encapsulated context.
Object.assign(meshPlugin, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'sidecarless',
  [Symbol.for('plugin-meta')]: { name: 'sidecarless', fastify: '5.x' },
});

/**
 * Fastify's `rewriteUrl` option: routes on the path as the mesh normalises it
 * (`meshConfig.pathNormalization`), as an application behind a sidecar receives it.
 * `Fastify({ rewriteUrl: meshRewriteUrl(mesh) })`.
 */
export function meshRewriteUrl(mesh: InboundCapable & { readonly inboundNormalize?: (url: string) => string }): (req: IncomingMessage) => string {
  return (req) => (mesh.inboundNormalize ? mesh.inboundNormalize(req.url ?? '/') : (req.url ?? '/'));
}
