// bench/kube-scale: endpoint discovery from the Kubernetes API at scale, fed through an in-memory
// KubeWatcher (the reflector over a real API server can replace it later): 1,000 Services, 1,000
// EndpointSlices of 10 endpoints (10,000 endpoints), 10,000 Pod metadata objects, 30 Nodes.
// - sync to servable: from createMesh resolving (collections already listed) to the body of the
//   first request to one service read; the backend is one real HTTP server on 0.0.0.0 in this
//   process, so every 127.x.y.z endpoint answers (with its own address).
// - heap: after one request to every service (1,000 clusters made, one connection each), forced
//   GCs, minus the heap before the Kubernetes objects were built: objects + mesh, what a process
//   holding the reflector's cache would carry.
// - change to serving: at 100 events/s, a service's slice is replaced (all 10 endpoints move to new
//   addresses); the time from the collection change to a request answered by a new address.
//   The apply part (recomputing that service's clusters, synchronous in the event) is shown too.
// Targets (issue 5): heap <= 50 MB; change to serving p99 <= 50 ms.
// Run: npm run bench:kube-scale   (builds first; node runs with --expose-gc)
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createMesh } from '../dist/index.js';
import { info, loadLine, machineLine, percentile, row, sortedCopy, watchdog } from './lib/common.mjs';
import { MemoryKubeWatcher } from './lib/memory-kube.mjs';
import { nodeObject, podObject, serviceObject, sliceObject } from './lib/kube-objects.mjs';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const ENDPOINTS = Number(process.env.ENDPOINTS ?? 10);
const EVENTS = Number(process.env.EVENTS ?? 500);
const RATE = Number(process.env.RATE ?? 100);
const gc = globalThis.gc ?? (() => {});
watchdog(300_000, 'kube-scale');

/** The backend, in a child process so its sockets are not in the measured heap. */
function backend() {
  const server = createServer((req, res) => res.end(req.socket.localAddress.replace(/^::ffff:/, '')));
  server.keepAliveTimeout = 60_000;
  server.listen(0, '0.0.0.0', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
}

async function main() {
  console.log(machineLine('kube-scale'));
  const child = fork(fileURLToPath(import.meta.url), ['backend'], { execPath: process.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m.port));
    child.once('exit', (code) => reject(new Error(`backend exited with ${code}`)));
  });

  gc();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const watcher = new MemoryKubeWatcher();
  const ns = (plural) => watcher.get(plural, 'shop');
  const services = Array.from({ length: SERVICES }, (_, i) => serviceObject(i));
  const slices = Array.from({ length: SERVICES }, (_, i) => sliceObject(i, port, ENDPOINTS));
  const pods = [];
  for (let i = 0; i < SERVICES; i++) for (let k = 0; k < ENDPOINTS; k++) pods.push(podObject(i, k, 0, 'PartialObjectMetadata'));
  ns('services').sync(services);
  ns('endpointslices').sync(slices);
  ns('pods').sync(pods);
  watcher.get('nodes').sync(Array.from({ length: 30 }, (_, n) => nodeObject(n)));

  gc();
  gc();
  const heapObjects = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const mesh = await createMesh({ namespace: 'shop', dns: false, watch: false, config: [], kubeWatcher: watcher, locality: 'region-1/zone-0' });
  const ready = performance.now();
  const first = await mesh.request(`http://svc-${SERVICES >> 1}:9080/`);
  const firstBody = await first.body.text();
  const servable = performance.now();
  if (first.statusCode !== 200) throw new Error(`first request: ${first.statusCode} ${firstBody}`);

  for (let i = 0; i < SERVICES; i++) {
    const res = await mesh.request(`http://svc-${i}:9080/`);
    const body = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`svc-${i}: ${res.statusCode} ${body}`);
  }
  gc();
  gc();
  const heapAfter = process.memoryUsage().heapUsed;

  // Changes at RATE events/s: each replaces one service's endpoints (a new generation of pods).
  const toServing = [];
  const apply = [];
  const interval = 1000 / RATE;
  let next = performance.now();
  for (let e = 0; e < EVENTS; e++) {
    const i = (e * 7) % SERVICES;
    // Alternate generations 1 and 2 so every event moves to addresses not in use.
    const gen = (Math.floor((e * 7) / SERVICES) % 2) + 1;
    const slice = sliceObject(i, port, ENDPOINTS, gen);
    const fresh = new Set(slice.endpoints.map((x) => x.addresses[0]));
    ns('pods').upsert(...Array.from({ length: ENDPOINTS }, (_, k) => podObject(i, k, gen, 'PartialObjectMetadata')));
    const start = performance.now();
    ns('endpointslices').upsert(slice);
    apply.push(performance.now() - start);
    for (let tries = 0; ; tries++) {
      const res = await mesh.request(`http://svc-${i}:9080/`);
      const body = await res.body.text();
      if (res.statusCode === 200 && fresh.has(body)) break;
      if (tries > 1000) throw new Error(`svc-${i} never served a new endpoint (last ${res.statusCode} ${body})`);
    }
    toServing.push(performance.now() - start);
    next += interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const s = sortedCopy(toServing);
  const a = sortedCopy(apply);

  console.log(info('services / endpoints / pods', SERVICES, '', 0) + ` / ${SERVICES * ENDPOINTS} / ${pods.length}`);
  console.log(info('createMesh (collections listed)', ready - t0, 'ms'));
  console.log(info('sync to first request served', servable - ready, 'ms'));
  console.log(info('heap: the Kubernetes objects alone (reflector cache)', (heapObjects - heapBefore) / 2 ** 20, 'MB', 1));
  console.log(info('heap: the mesh with 1,000 clusters', (heapAfter - heapObjects) / 2 ** 20, 'MB', 1));
  console.log(row('heap: Kubernetes objects + mesh, 1,000 clusters', (heapAfter - heapBefore) / 2 ** 20, 'MB', '<=', 50, 1));
  console.log(info(`events at ${RATE}/s`, EVENTS, '', 0));
  console.log(info('apply p50 (event to clusters recomputed)', percentile(a, 50), 'ms', 3));
  console.log(info('apply p99', percentile(a, 99), 'ms', 3));
  console.log(info('change to serving p50 (incl. one request)', percentile(s, 50), 'ms', 3));
  console.log(row('change to serving p99 (incl. one request)', percentile(s, 99), 'ms', '<=', 50, 3));
  console.log(loadLine());
  await mesh.close();
  child.disconnect();
}

if (process.argv[2] === 'backend') backend();
else
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
