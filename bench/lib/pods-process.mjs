// The backend "pods" of the data-path benchmarks, run as a child process of the bench (see
// startPods in common.mjs): one node:http server per loopback address, all on one port.
//
// Options (JSON in argv[2]):
//   addresses  loopback addresses, one pod each
//   bodySize   response body bytes (default 1024)
//   serviceMs  0: answer at once; > 0: each request takes this long (a timer, not CPU)
//   workers    with serviceMs: requests one pod serves at once, the rest queue (0 = no limit),
//              so a slowed-down pod also loses capacity, as a real one does
//   jitter     with serviceMs: service time varies uniformly by +-jitter (0.2 = +-20 %)
//   tls        { cert, key, ca } file paths: HTTPS with these, client certificates required and
//              verified against `ca` (a mesh workload under STRICT mTLS); default plaintext
// Messages from the parent: { type: 'slow', index, factor }, { type: 'fail', index, status }
// (pod `index` answers every request with `status` at once; 0: serves normally again),
// { type: 'stats' }.
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';

const options = JSON.parse(process.argv[2] ?? '{}');
const addresses = options.addresses ?? ['127.0.0.2'];
const body = Buffer.alloc(options.bodySize ?? 1024, 'x');
const serviceMs = options.serviceMs ?? 0;
const workers = options.workers ?? 0;
const jitter = options.jitter ?? 0;

const pods = addresses.map((address) => ({ address, factor: 1, failWith: 0, busy: 0, queue: [], served: 0, failed: 0, dropped: 0, connections: 0 }));
const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };

function reply(res) {
  res.writeHead(200, headers);
  res.end(body);
}

function serve(pod, res) {
  if (res.destroyed || res.socket?.destroyed) {
    // The client gave up (timeout) while this request queued: a real server would notice the
    // reset too; skipping it keeps the queue from growing forever.
    pod.dropped++;
    next(pod);
    return;
  }
  pod.busy++;
  const ms = serviceMs * pod.factor * (1 + jitter * (2 * Math.random() - 1));
  setTimeout(() => {
    pod.busy--;
    pod.served++;
    if (!res.destroyed) reply(res);
    next(pod);
  }, ms);
}

function next(pod) {
  while ((workers === 0 || pod.busy < workers) && pod.queue.length > 0) serve(pod, pod.queue.shift());
}

function handle(pod, req, res) {
  req.resume();
  if (pod.failWith !== 0) {
    pod.failed++;
    res.writeHead(pod.failWith, { 'content-type': 'text/plain', 'content-length': '6' });
    res.end('failed');
    return;
  }
  if (serviceMs === 0) {
    pod.served++;
    reply(res);
    return;
  }
  if (workers === 0 || pod.busy < workers) serve(pod, res);
  else pod.queue.push(res);
}

const tls = options.tls
  ? { cert: readFileSync(options.tls.cert), key: readFileSync(options.tls.key), ca: readFileSync(options.tls.ca), requestCert: true, rejectUnauthorized: true }
  : undefined;
const createServer = (opts, handler) => (tls ? createHttpsServer({ ...tls, ...opts }, handler) : createHttpServer(opts, handler));

const servers = [];
async function listenAll(port) {
  for (const pod of pods) {
    const server = createServer({ keepAliveTimeout: 60_000, requestTimeout: 0 }, (req, res) => handle(pod, req, res));
    server.on(tls ? 'secureConnection' : 'connection', () => pod.connections++);
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, pod.address, () => resolve());
    });
    servers.push(server);
    if (port === 0) port = server.address().port;
  }
  return port;
}

let port = options.port ?? 0;
for (let attempt = 0; ; attempt++) {
  try {
    port = await listenAll(port);
    break;
  } catch (error) {
    // The first pod's random port was taken on another address: start over on a new one.
    for (const s of servers.splice(0)) s.close();
    if (attempt >= 20) throw error;
    port = 0;
  }
}

process.on('message', (m) => {
  if (m.type === 'slow') {
    pods[m.index].factor = m.factor;
    process.send({ id: m.id });
  } else if (m.type === 'fail') {
    pods[m.index].failWith = m.status;
    process.send({ id: m.id });
  } else if (m.type === 'stats') {
    process.send({
      id: m.id,
      pods: pods.map((p) => ({
        address: p.address,
        served: p.served,
        failed: p.failed,
        dropped: p.dropped,
        queued: p.queue.length,
        connections: p.connections,
      })),
    });
  }
});
process.on('SIGTERM', () => process.exit(0));
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', port });
