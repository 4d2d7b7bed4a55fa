// ratings, a Fastify 5 service behind sidecarless: `npm run example:fastify`.
// Its sidecar configuration is plain Istio YAML (mesh/ratings.yaml): RequestAuthentication,
// AuthorizationPolicy (readers only, no /admin) and a local rate limit on the inbound listener.
import Fastify from 'fastify';
import { fileURLToPath } from 'node:url';
import { createMesh } from '../../dist/index.js';
import { meshPlugin, meshRewriteUrl } from '../../dist/fastify.js';
import { startTracing } from '../inbound-common/tracing.mjs';

startTracing('ratings');
const port = Number(process.env.PORT ?? 9081);
const mesh = await createMesh({
  namespace: 'shop',
  labels: { app: 'ratings' },
  config: [fileURLToPath(new URL('mesh/', import.meta.url))],
  certificates: false,
  telemetry: { workload: { name: 'ratings' } },
});
mesh.on('inboundDenied', (error) => console.log(`[mesh] ${error.code}: ${error.message}`));

const app = Fastify({ rewriteUrl: meshRewriteUrl(mesh) });
await app.register(meshPlugin, { mesh });
app.get('/ratings/:id', async (request) => ({
  id: request.params.id,
  stars: 4,
  // Who asked, as the mesh verified it: RequestAuthentication's principal and claims.
  reader: request.mesh?.jwt?.claims.sub,
}));
app.get('/admin', async () => 'the admin page (the DENY policy keeps everyone out)');

await app.listen({ port, host: '127.0.0.1' });
console.log(`ratings (Fastify) listening on http://127.0.0.1:${port}`);

async function stop() {
  await app.close();
  await mesh.close();
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
