// The `frontend` service: calls reviews through the mesh, with several requests in flight at all
// times, using its workload certificate in $CERTS_DIR (rotated meanwhile). It counts every request
// that did not succeed, which of its certificates reviews saw it present and which certificates
// reviews' side of the connections presented. Run by run.mjs, which asks for these counts and
// says when to stop (over IPC); it then prints a summary line (RESULT {...}).
import { dirname, resolve } from 'node:path';
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { createMesh } from '../../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const port = Number(process.env.REVIEWS_PORT);
/** A safety limit: run.mjs normally stops the frontend long before. */
const maxSeconds = Number(process.env.MAX_SECONDS ?? 120);
const concurrency = 8;

const mesh = await createMesh({
  namespace: 'shop',
  labels: { app: 'frontend' },
  config: [
    resolve(here, 'mesh/reviews-service.yaml'),
    // The reviews workload: where it listens and the service account it runs as.
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: 'reviews-1', namespace: 'shop' },
      spec: { address: '127.0.0.1', ports: { http: port }, labels: { app: 'reviews' }, serviceAccount: 'reviews' },
    },
  ],
  certificates: { directory: process.env.CERTS_DIR, pollIntervalMs: 250, debounceMs: 20 },
});
mesh.on('certificateRejected', (error) => console.error(`[frontend] certificate refused: ${error.message}`));
mesh.on('certificateRotated', (bundle, previous) => {
  if (previous) console.error(`[frontend] rotated to certificate ${bundle.leaf.serialNumber.slice(-8)}`);
});

// Without the mesh, a plaintext call to reviews is refused (STRICT).
try {
  const res = await request(`http://127.0.0.1:${port}/reviews/1`);
  console.log(`plaintext call without the mesh: answered ${res.statusCode} (unexpected)`);
} catch (error) {
  console.log(`plaintext call without the mesh: refused (${error.code ?? error.message})`);
}

const stats = { requests: 0, ok: 0, failed: 0, errors: [], clientCertificates: new Set(), serverCertificates: new Set(), callers: new Set() };
let stopping = false;
const deadline = Date.now() + maxSeconds * 1000;
async function worker() {
  while (!stopping && Date.now() < deadline) {
    stats.requests++;
    try {
      const res = await mesh.request('http://reviews.shop.svc.cluster.local:9080/reviews/1');
      const body = await res.body.json();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      stats.ok++;
      stats.callers.add(body.caller);
      stats.clientCertificates.add(body.callerCertificate);
      stats.serverCertificates.add(body.servedWith);
    } catch (error) {
      stats.failed++;
      if (stats.errors.length < 5) stats.errors.push(String(error.cause ?? error));
    }
  }
}
const summary = () => ({
  requests: stats.requests,
  ok: stats.ok,
  failed: stats.failed,
  errors: stats.errors,
  callers: [...stats.callers],
  clientCertificates: [...stats.clientCertificates],
  serverCertificates: [...stats.serverCertificates],
});
process.on('message', (message) => {
  if (message === 'stats') process.send({ stats: summary() });
  if (message === 'stop') stopping = true;
});
// Requests are about to flow.
process.send({ ready: true });
const ticker = setInterval(() => {
  console.log(
    `ok=${stats.ok} failed=${stats.failed}  frontend certificates reviews saw: ${stats.clientCertificates.size}  reviews certificates seen: ${stats.serverCertificates.size}`,
  );
}, 1000);
await Promise.all(Array.from({ length: concurrency }, worker));
clearInterval(ticker);
await mesh.close();
console.log(`RESULT ${JSON.stringify(summary())}`);
process.disconnect?.();
