// The shop's "pods": one small HTTP server per loopback address, as in a cluster each pod has its
// own IP. Every answer says which service, version and pod served it, and what it received.
import { createServer } from 'node:http';

export const SHOP_PODS = [
  { service: 'productpage', version: 'v1', address: '127.0.0.2' },
  { service: 'reviews', version: 'v1', address: '127.0.0.3' },
  { service: 'reviews', version: 'v1', address: '127.0.0.4' },
  { service: 'reviews', version: 'v2', address: '127.0.0.5' },
  { service: 'reviews', version: 'v2', address: '127.0.0.6' },
  { service: 'reviews', version: 'v3', address: '127.0.0.7' },
  { service: 'ratings', version: 'v1', address: '127.0.0.8' },
  { service: 'ratings', version: 'v1', address: '127.0.0.9' },
];

export async function startShopPods(port = 9080) {
  const servers = [];
  for (const pod of SHOP_PODS) {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ...pod, path: req.url, host: req.headers.host }));
      });
    });
    await new Promise((resolve, reject) => {
      server.once('error', (error) => reject(new Error(`cannot listen on ${pod.address}:${port}: ${error.message}`)));
      server.listen(port, pod.address, resolve);
    });
    servers.push(server);
  }
  return {
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise((resolve) => {
              s.closeAllConnections();
              s.close(resolve);
            }),
        ),
      ),
  };
}
