// bench/kube-scale-api: endpoint discovery at scale over the real path: the official client's
// credentials, our reflectors (paginated list, then watch) against the fake Kubernetes API server
// of the tests (bundled with esbuild, run in a child process so its store is not in our heap).
// 1,000 Services, 1,000 EndpointSlices of 10 endpoints (10,000 endpoints), 10,000 Pods, 30 Nodes.
// - initial sync: from createMesh called to the first request to a random service answered (the
//   request waits for the namespace's first lists, as a real caller's would).
// - heap: after one request to every service (1,000 clusters), forced GCs, minus the heap before
//   createMesh with @kubernetes/client-node already loaded: reflector caches + mesh.
// - event to serving: at 100 events/s, a service's pods are replaced (10 Pods deleted, 10 created,
//   its EndpointSlice rewritten to the new addresses, one batch); the time from asking the API
//   process to write it to a request answered by a new address (IPC, the write, the watch
//   stream, the reflector, the endpoint index, the cluster, one request).
// Targets (issue 5): heap <= 50 MB; event to serving p99 <= 50 ms.
// Run: npm run bench:kube-scale-api   (builds first; node runs with --expose-gc)
import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { info, loadLine, machineLine, percentile, sortedCopy, watchdog } from './lib/common.mjs';
import { bundleFakeKubeApi } from './lib/fake-kube-api.mjs';
import { nodeObject, podObject, serviceObject, sliceObject } from './lib/kube-objects.mjs';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const ENDPOINTS = Number(process.env.ENDPOINTS ?? 10);
const EVENTS = Number(process.env.EVENTS ?? 500);
const RATE = Number(process.env.RATE ?? 100);
const self = fileURLToPath(import.meta.url);
const gc = globalThis.gc ?? (() => {});

function verdict(what, value, unit, target, digits = 2) {
  const v = Number.isFinite(value) ? value.toFixed(digits) : String(value);
  return `${what.padEnd(52)} ${v.padStart(10)} ${unit.padEnd(5)} target <= ${target} ${unit}  ${value <= target ? 'PASS' : 'MISS'}`;
}

/** The pods' backend: one server on 0.0.0.0 answering its local address, so every 127.x.y.z answers. */
function backend() {
  const server = createServer((req, res) => res.end(req.socket.localAddress.replace(/^::ffff:/, '')));
  server.keepAliveTimeout = 60_000;
  server.listen(0, '0.0.0.0', () => process.send({ port: server.address().port }));
  process.on('disconnect', () => process.exit(0));
}

/** The API server process: the cluster's objects, then one change batch per message. */
async function apiServer(moduleUrl, podPort, kubeconfig) {
  const { FakeKubeApi } = await import(moduleUrl);
  const api = await FakeKubeApi.start({ token: 'bench', historyLimit: 100_000 });
  for (let n = 0; n < 30; n++) api.create(nodeObject(n));
  for (let i = 0; i < SERVICES; i++) {
    api.create(serviceObject(i));
    for (let k = 0; k < ENDPOINTS; k++) api.create(podObject(i, k));
    api.create(sliceObject(i, podPort, ENDPOINTS));
  }
  await api.writeKubeconfig(kubeconfig, { namespace: 'shop' });
  const generation = new Map();
  process.on('message', ({ i, gen }) => {
    const before = generation.get(i) ?? 0;
    generation.set(i, gen);
    api.batch(() => {
      for (let k = 0; k < ENDPOINTS; k++) api.create(podObject(i, k, gen));
      api.update(sliceObject(i, podPort, ENDPOINTS, gen));
      for (let k = 0; k < ENDPOINTS; k++) api.delete('v1', 'Pod', `svc-${i}-${before}-${k}`, 'shop');
    });
    process.send({ written: i });
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true });
}

function child(args) {
  const c = fork(self, args, { execPath: process.execPath, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const first = new Promise((resolve, reject) => {
    c.once('message', resolve);
    c.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
  });
  return { c, first };
}

async function main() {
  watchdog(600_000, 'kube-scale-api');
  console.log(machineLine('kube-scale-api'));
  const moduleUrl = await bundleFakeKubeApi();
  const kubeconfig = join(dirname(self), '..', '.tmp', 'bench', 'kube-scale-api.kubeconfig');
  await mkdir(dirname(kubeconfig), { recursive: true });
  const pods = child(['backend']);
  const { port } = await pods.first;
  const apiStart = performance.now();
  const api = child(['api', moduleUrl, String(port), kubeconfig]);
  await api.first;
  const seeded = performance.now() - apiStart;

  // Loaded before the baseline: the client library is code, not state.
  const { createMesh } = await import('../dist/index.js');
  await import('@kubernetes/client-node');
  gc();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;

  const t0 = performance.now();
  const mesh = await createMesh({ namespace: 'shop', dns: false, watch: false, locality: 'region-1/zone-0', discovery: { kubeconfig, istioConfig: false } });
  const created = performance.now();
  const target = Math.floor(Math.random() * SERVICES);
  const first = await mesh.request(`http://svc-${target}:9080/`);
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

  const toServing = [];
  const written = [];
  const interval = 1000 / RATE;
  let next = performance.now();
  for (let e = 0; e < EVENTS; e++) {
    const i = (e * 7) % SERVICES;
    const gen = (Math.floor((e * 7) / SERVICES) % 2) + 1;
    const fresh = new Set(sliceObject(i, port, ENDPOINTS, gen).endpoints.map((x) => x.addresses[0]));
    const start = performance.now();
    const ack = new Promise((resolve) => api.c.once('message', resolve));
    api.c.send({ i, gen });
    await ack;
    written.push(performance.now() - start);
    for (let tries = 0; ; tries++) {
      const res = await mesh.request(`http://svc-${i}:9080/`);
      const body = await res.body.text();
      if (res.statusCode === 200 && fresh.has(body)) break;
      if (res.statusCode !== 200) throw new Error(`svc-${i} failed during the change: ${res.statusCode} ${body}`);
      if (tries > 100_000) throw new Error(`svc-${i} never served a new endpoint (last ${res.statusCode} ${body})`);
    }
    toServing.push(performance.now() - start);
    next += interval;
    const wait = next - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  const s = sortedCopy(toServing);
  const w = sortedCopy(written);
  const restarts = mesh.kubernetesStatus().collections.reduce((n, c) => n + c.status.restarts, 0);

  console.log(info('services / endpoints / pods', SERVICES, '', 0) + ` / ${SERVICES * ENDPOINTS} / ${SERVICES * ENDPOINTS}`);
  console.log(info('API process: objects created and serving', seeded, 'ms', 0));
  console.log(info('createMesh (resolves before endpoint lists)', created - t0, 'ms'));
  console.log(info('initial sync: createMesh to first request served', servable - t0, 'ms'));
  console.log(info('heap used after sync (whole process)', heapAfter / 2 ** 20, 'MB', 1));
  console.log(verdict('heap: reflector caches + mesh, 1,000 clusters', (heapAfter - heapBefore) / 2 ** 20, 'MB', 50, 1));
  console.log(info(`events at ${RATE}/s (each: 10 Pods replaced + 1 slice)`, EVENTS, '', 0));
  console.log(info('written (IPC + API write) p50', percentile(w, 50), 'ms', 3));
  console.log(info('event to serving p50 (incl. one request)', percentile(s, 50), 'ms', 3));
  console.log(verdict('event to serving p99 (incl. one request)', percentile(s, 99), 'ms', 50, 3));
  console.log(info('event to serving max', s[s.length - 1], 'ms', 3));
  console.log(info('watch restarts during the run', restarts, '', 0));
  console.log(loadLine());
  await mesh.close();
  pods.c.disconnect();
  api.c.disconnect();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'backend') backend();
else if (mode === 'api')
  apiServer(rest[0], Number(rest[1]), rest[2]).catch((error) => {
    console.error(error);
    process.exit(1);
  });
else
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
