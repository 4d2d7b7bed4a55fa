// bench/scale (S10): a mesh of 1,000 services with 10 endpoints each (a ServiceEntry, a
// DestinationRule and a VirtualService per service): the heap it holds, and how soon the first
// request is answered once createMesh has resolved.
// - heap: after createMesh (the snapshot), then after one request to every service through stub
//   pools (every cluster, host and balancer made; no sockets), measured with forced GCs.
// - first request: the pods of one service (10 loopback addresses, in a child process, warmed up
//   beforehand) answer a real HTTP request; the time runs from createMesh resolving to the body
//   read, so it holds the cluster's creation, the first connect and the cold code paths.
// Each of the two runs in a fresh process of its own (a child of this one) so neither warms the
// other. For context: undici's own first request in a fresh process, and the heap one undici Pool
// object takes (the mesh makes one per endpoint it sends to).
// Targets (issue 3): heap <= 25 MB; first request <= 50 ms after createMesh resolves.
// Run: npm run bench:scale   (builds first; node runs with --expose-gc)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Pool, request as undiciRequest } from 'undici';
import { createMesh } from '../dist/index.js';
import { info, loadLine, machineLine, median, onExit, row, startPods, watchdog } from './lib/common.mjs';
import { setPoolFactory, StubPool } from './lib/mesh-config.mjs';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const ENDPOINTS = Number(process.env.ENDPOINTS ?? 10);
const RUNS = Number(process.env.RUNS ?? 3);
const TARGET = 500; // the service whose pods are real
const gc = globalThis.gc ?? (() => {});

/** Endpoint k of service i: 127.(1 + i / 250).(i % 250).(k + 2), unique and loopback. */
const addressOf = (i, k) => `127.${1 + Math.floor(i / 250)}.${i % 250}.${k + 2}`;

function resources(port) {
  const out = [];
  for (let i = 0; i < SERVICES; i++) {
    const name = `svc-${i}`;
    out.push(
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'ServiceEntry',
        metadata: { name, namespace: 'shop' },
        spec: {
          hosts: [`${name}.shop.svc.cluster.local`],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          ports: [{ number: port, name: 'http', protocol: 'HTTP' }],
          endpoints: Array.from({ length: ENDPOINTS }, (_, k) => ({ address: addressOf(i, k), labels: { version: k % 3 === 2 ? 'v2' : 'v1' } })),
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'DestinationRule',
        metadata: { name, namespace: 'shop' },
        spec: {
          host: name,
          trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } },
          subsets: [
            { name: 'v1', labels: { version: 'v1' } },
            { name: 'v2', labels: { version: 'v2' } },
          ],
        },
      },
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name, namespace: 'shop' },
        spec: {
          hosts: [name],
          http: [
            { match: [{ headers: { 'x-canary': { exact: 'true' } } }], route: [{ destination: { host: name, subset: 'v2' } }] },
            {
              route: [
                { destination: { host: name, subset: 'v1' }, weight: 90 },
                { destination: { host: name, subset: 'v2' }, weight: 10 },
              ],
              timeout: '2s',
            },
          ],
        },
      },
    );
  }
  return out;
}

const section = process.env.BENCH_SECTION;
if (section === 'heap') {
  const port = 9080;
  const objects = resources(port);
  gc();
  gc();
  const before = process.memoryUsage().heapUsed;
  const mesh = await createMesh({ namespace: 'shop', watch: false, config: objects });
  gc();
  gc();
  const snapshot = process.memoryUsage().heapUsed - before;
  setPoolFactory(mesh, () => new StubPool());
  for (let i = 0; i < SERVICES; i++) {
    const res = await mesh.request(`http://svc-${i}:${port}/`);
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`svc-${i}: status ${res.statusCode}`);
  }
  gc();
  gc();
  const touched = process.memoryUsage().heapUsed - before;
  // One real undici Pool per endpoint is what the mesh makes once it sends to all of them.
  gc();
  gc();
  const p0 = process.memoryUsage().heapUsed;
  const pools = Array.from(
    { length: 1000 },
    (_, k) => new Pool(`http://${addressOf(k % SERVICES, 0)}:${port}`, { connections: null, pipelining: 1, keepAliveTimeout: 4_000 }),
  );
  gc();
  gc();
  const perPool = (process.memoryUsage().heapUsed - p0) / pools.length;
  process.send({ snapshot, touched, perPool });
  await mesh.close();
  process.exit(0);
} else if (section === 'first') {
  const port = Number(process.env.PODS_PORT);
  const objects = resources(port);
  const t0 = performance.now();
  const mesh = await createMesh({ namespace: 'shop', watch: false, config: objects });
  const t1 = performance.now();
  const res = await mesh.request(`http://svc-${TARGET}:${port}/reviews/1`);
  const body = await res.body.arrayBuffer();
  const t2 = performance.now();
  if (res.statusCode !== 200 || body.byteLength !== 1024) throw new Error(`status ${res.statusCode}`);
  // The second request to the same service, for contrast (cluster made, connection open).
  const t3 = performance.now();
  const res2 = await mesh.request(`http://svc-${TARGET}:${port}/reviews/2`);
  await res2.body.arrayBuffer();
  const t4 = performance.now();
  process.send({ create: t1 - t0, first: t2 - t1, second: t4 - t3 });
  await mesh.close();
  process.exit(0);
} else if (section === 'undici-first') {
  const port = Number(process.env.PODS_PORT);
  const t0 = performance.now();
  const res = await undiciRequest(`http://${addressOf(TARGET, 0)}:${port}/reviews/1`);
  await res.body.arrayBuffer();
  process.send({ first: performance.now() - t0 });
  process.exit(0);
}

watchdog(300_000, 'bench/scale');
console.log(machineLine('bench/scale (S10)'));
const child = (name, env = {}) =>
  new Promise((resolve, reject) => {
    const c = fork(fileURLToPath(import.meta.url), {
      execPath: process.execPath,
      execArgv: ['--expose-gc'],
      env: { ...process.env, BENCH_SECTION: name, ...env },
    });
    let answer;
    c.once('message', (m) => {
      answer = m;
    });
    c.once('error', reject);
    c.once('exit', (code) => (answer ? resolve(answer) : reject(new Error(`${name} exited with ${code}`))));
  });

const heap = await child('heap');
const pods = await startPods({ addresses: Array.from({ length: ENDPOINTS }, (_, k) => addressOf(TARGET, k)), bodySize: 1024 });
onExit(() => process.kill(pods.pid));
// Warm the pods' server code so the first request measures the client.
for (let k = 0; k < 200; k++) {
  const res = await undiciRequest(`http://${addressOf(TARGET, k % ENDPOINTS)}:${pods.port}/warm`);
  await res.body.dump();
}
const firsts = [];
const undiciFirsts = [];
for (let r = 0; r < RUNS; r++) {
  firsts.push(await child('first', { PODS_PORT: String(pods.port) }));
  undiciFirsts.push((await child('undici-first', { PODS_PORT: String(pods.port) })).first);
}
await pods.stop();

const mb = (b) => b / 1024 / 1024;
console.log(`${SERVICES} services x ${ENDPOINTS} endpoints (${SERVICES * 3} resources); first-request figures: median of ${RUNS} fresh processes`);
console.log(row('heap held by the mesh after createMesh', mb(heap.snapshot), 'MB', '<=', 25));
console.log(row('heap after a request to every service (stub pools)', mb(heap.touched), 'MB', '<=', 25));
console.log(info('one undici Pool object, heap (context)', heap.perPool / 1024, 'KiB', 1));
console.log(info('createMesh (validate + compile), fresh process', median(firsts.map((f) => f.create)), 'ms', 1));
console.log(row('first request after createMesh resolves', median(firsts.map((f) => f.first)), 'ms', '<=', 50));
console.log(info('second request, same service', median(firsts.map((f) => f.second)), 'ms', 2));
console.log(info('undici.request first request, fresh process (context)', median(undiciFirsts), 'ms', 1));
console.log(loadLine());
