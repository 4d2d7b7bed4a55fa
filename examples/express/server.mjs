// frontend, an Express 5 service behind sidecarless that calls ratings (the Fastify example)
// through the mesh: `npm run example:express` (start `npm run example:fastify` first).
// Then: TOKEN=$(node examples/inbound-common/dev-identity.mjs alice reviewers)
//       curl -H "authorization: Bearer $TOKEN" http://127.0.0.1:9080/reviews/1
import express from 'express';
import { fileURLToPath } from 'node:url';
import { createMesh } from '../../dist/index.js';
import { meshMiddleware } from '../../dist/express.js';
import { startTracing } from '../inbound-common/tracing.mjs';

startTracing('frontend');
const port = Number(process.env.PORT ?? 9080);
const ratingsPort = Number(process.env.RATINGS_PORT ?? 9081);
const mesh = await createMesh({
  namespace: 'shop',
  labels: { app: 'frontend' },
  config: [
    fileURLToPath(new URL('mesh/', import.meta.url)),
    // Where ratings runs: a ServiceEntry with a STATIC endpoint, as for any service outside Kubernetes.
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'ratings', namespace: 'shop' },
      spec: {
        hosts: ['ratings.shop.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 9081, name: 'http', protocol: 'HTTP', targetPort: ratingsPort }],
        endpoints: [{ address: '127.0.0.1' }],
      },
    },
  ],
  certificates: false,
  telemetry: { workload: { name: 'frontend' } },
});
mesh.on('inboundDenied', (error) => console.log(`[mesh] ${error.code}: ${error.message}`));

const app = express();
app.use(meshMiddleware(mesh));
app.get('/health', (req, res) => res.send('ok'));
app.get('/reviews/:id', async (req, res) => {
  // Through the mesh: the VirtualService's timeout and retries apply, the trace continues, and
  // the caller's token (kept by forwardOriginalToken) goes along.
  const upstream = await mesh.fetch(`http://ratings.shop.svc.cluster.local:9081/ratings/${encodeURIComponent(req.params.id)}`, {
    headers: req.headers.authorization ? { authorization: req.headers.authorization } : {},
  });
  const body = await upstream.text();
  res.status(upstream.status).type(upstream.headers.get('content-type') ?? 'text/plain');
  res.send(upstream.ok ? { review: `review ${req.params.id} for ${req.headers['x-user']}`, rating: JSON.parse(body) } : body);
});

const server = app.listen(port, '127.0.0.1', () => console.log(`frontend (Express) listening on http://127.0.0.1:${port}`));

async function stop() {
  server.closeAllConnections();
  server.close();
  await mesh.close();
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
