// The `reviews` service: a node:http handler behind the mesh's inbound mTLS (PeerAuthentication
// STRICT), serving with the workload certificate in $CERTS_DIR (rotated by whoever writes it, as
// the kubelet swaps a Secret volume). It answers who called (the verified SPIFFE ID and the
// serial of the client certificate) and which certificate its side of the connection presented.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMesh, peerIdentity } from '../../dist/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const mesh = await createMesh({
  namespace: 'shop',
  labels: { app: 'reviews' },
  config: [resolve(here, 'mesh/peer-authentication.yaml')],
  certificates: { directory: process.env.CERTS_DIR, pollIntervalMs: 250, debounceMs: 20 },
});
mesh.on('certificateRotated', (bundle, previous) => {
  if (previous) console.error(`[reviews] rotated to certificate ${bundle.leaf.serialNumber.slice(-8)}`);
});
mesh.on('inboundRejected', (error) => console.error(`[reviews] refused: ${error.reason}: ${error.message}`));

const server = mesh.createServer((req, res) => {
  const caller = peerIdentity(req);
  req.resume();
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        reviews: [{ id: 1, stars: 5 }],
        caller: caller?.spiffeId,
        // The certificates of this connection: the one the caller presented, and ours.
        callerCertificate: caller?.certificate.serialNumber,
        servedWith: req.socket.getCertificate?.()?.serialNumber,
      }),
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  // The parent reads the port from this line.
  console.log(JSON.stringify({ listening: server.address().port }));
});

process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void mesh.close();
});
