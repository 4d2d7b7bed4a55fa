// bench/throughput (S2): requests per second with 1 KiB response bodies over keep-alive
// connections, a fixed number of requests at a fixed concurrency, for:
//   undici.request to the pods (client-side round robin over their addresses)  vs  mesh.request
//   undici.fetch   to the pods                                                  vs  mesh.fetch
//   the same undici client through a sidecar-like proxy hop (nginx on loopback, keep-alive to the pods)
// The pods (node:http servers on 127.0.0.2..5) run in a child process, nginx in its own, so this
// process measures only the client; its CPU time per request is printed too. Each variant has
// its own connection pool with undici's defaults, as the mesh's per-endpoint pools (no connection
// cap, no pipelining); the connections each opened are printed.
// Paired rounds (bench/lib/paired.mjs, shared with bench/overhead.mjs and bench/telemetry-s9.mjs):
// each round runs every variant twice, REQUESTS/2 requests per run, forward then backward, so the
// variants of a round see the same machine; a ratio (or a CPU difference) is taken within each
// round and the figure is the median of the per-round figures, with its interquartile range. This
// machine is shared with other work (test runs): a round during which other processes used more
// than OTHER_LIMIT cores is thrown away and run again (at most 3 x ROUNDS attempts), and said so.
// Targets (issue 3): mesh.request >= 0.90x undici.request, mesh.fetch >= 0.90x undici.fetch,
// mesh >= 1.3x the same client through the proxy hop.
// Run: npm run bench:throughput   (builds first; installs nginx-light when missing and root)
// A/B of a data path change: copy dist/ aside before it (e.g. to .tmp/dist-before), then
//   BASELINE=.tmp/dist-before/index.js VARIANTS=undici.request,mesh.request npm run bench:throughput
// ISOLATE=1 runs each variant in a child process of its own (same pods, rounds and order), so the
// variants share no JIT state: undici's code then sees one client's handlers and options only.
import { fork } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Agent, Dispatcher, fetch as undiciFetch, Pool, request as undiciRequest } from 'undici';
import { createMesh } from '../dist/index.js';
import { cpuMeter, info, loadLine, machineLine, onExit, podAddresses, startPods, waitQuiet, watchdog } from './lib/common.mjs';
import { serviceResources } from './lib/mesh-config.mjs';
import { startProxy } from './lib/proxy.mjs';
import { combineRuns, medianOf, pairedDiff, pairedLine, pairedRatio, pairedRounds, runLoad } from './lib/paired.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const PODS = Number(process.env.PODS ?? 4);
const OTHER_LIMIT = Number(process.env.OTHER_LIMIT ?? 0.25);
/** ISOLATE=1: this process is the child running the one variant named here. */
const CHILD = process.env.BENCH_CHILD;
const ISOLATE = !CHILD && process.env.ISOLATE === '1';
watchdog(1_200_000, 'bench/throughput');
if (!CHILD) console.log(machineLine('bench/throughput (S2)') + (ISOLATE ? ' (ISOLATE: one child process per variant)' : ''));

const addresses = podAddresses(PODS);
// A child uses its parent's pods and proxy.
const pods = CHILD ? JSON.parse(process.env.BENCH_PODS) : await startPods({ addresses, bodySize: 1024 });
const proxy = CHILD ? (process.env.BENCH_PROXY ? JSON.parse(process.env.BENCH_PROXY) : undefined) : await startProxy(addresses.map((a) => `${a}:${pods.port}`));
/** ISOLATE: the child process of each variant. */
const children = new Map();
if (!CHILD) {
  onExit(() => {
    for (const c of children.values()) c.kill();
    proxy?.kill();
    process.kill(pods.pid);
  });
}
const ourPids = () => [process.pid, pods.pid, ...(proxy ? [proxy.pid] : []), ...[...children.values()].map((c) => c.pid)];

// One mesh per mesh variant, so each has its own connections, as each raw variant has its own Agent.
const meshOptions = { namespace: 'shop', watch: false, config: serviceResources({ port: pods.port, addresses }) };
const meshes = [await createMesh(meshOptions), await createMesh(meshOptions)];
const [meshReq, meshFetch] = meshes;
const agents = Array.from({ length: 4 }, () => new Agent({ keepAliveTimeout: 4_000 })); // the mesh's pools: 4 s too
const [rawReq, rawFetch, proxyReq, proxyFetch] = agents;

const rawUrls = addresses.map((a) => `http://${a}:${pods.port}/reviews/1`);
const meshUrl = `http://reviews:${pods.port}/reviews/1`;
const proxyUrl = proxy ? `${proxy.url}/reviews/1` : undefined;

async function viaRequest(promise) {
  const res = await promise;
  const body = await res.body.arrayBuffer();
  if (res.statusCode !== 200 || body.byteLength !== 1024) throw new Error(`status ${res.statusCode}, ${body.byteLength} bytes`);
}
async function viaFetch(promise) {
  const res = await promise;
  const body = await res.arrayBuffer();
  if (res.status !== 200 || body.byteLength !== 1024) throw new Error(`status ${res.status}, ${body.byteLength} bytes`);
}

/**
 * The least an in-process dispatcher in front of per-endpoint pools can do: round robin over
 * undici Pools made as the mesh makes them, nothing else. Not run by default; ask for it with
 * VARIANTS=undici.request,mesh.request,minimal-dispatcher to see what the mesh's own work costs.
 */
class MinimalDispatcher extends Dispatcher {
  pools = addresses.map((a) => new Pool(`http://${a}:${pods.port}`, { connections: null, pipelining: 1, keepAliveTimeout: 4_000 }));
  next = 0;
  dispatch(opts, handler) {
    return this.pools[this.next++ % this.pools.length].dispatch(opts, handler);
  }
  close() {
    return Promise.all(this.pools.map((p) => p.close())).then(() => undefined);
  }
}
const minimal = new MinimalDispatcher();
agents.push(minimal);

// BASELINE=path/to/an/older/dist/index.js adds `mesh.request@baseline`: the same client through an
// older build of the mesh, in the same process and rounds, for an A/B of a data path change.
const baseline = process.env.BASELINE ? await (await import(pathToFileURL(resolve(process.env.BASELINE)).href)).createMesh(meshOptions) : undefined;
if (baseline) meshes.push(baseline);

const variants = {
  'minimal-dispatcher': () => viaRequest(undiciRequest(meshUrl, { dispatcher: minimal })),
  'undici.request': (i) => viaRequest(undiciRequest(rawUrls[i % PODS], { dispatcher: rawReq })),
  'mesh.request': () => viaRequest(meshReq.request(meshUrl)),
  ...(baseline ? { 'mesh.request@baseline': () => viaRequest(baseline.request(meshUrl)) } : {}),
  'undici.fetch': (i) => viaFetch(undiciFetch(rawUrls[i % PODS], { dispatcher: rawFetch })),
  'mesh.fetch': () => viaFetch(meshFetch.fetch(meshUrl)),
  ...(proxy
    ? {
        'undici.request via proxy': () => viaRequest(undiciRequest(proxyUrl, { dispatcher: proxyReq })),
        'undici.fetch via proxy': () => viaFetch(undiciFetch(proxyUrl, { dispatcher: proxyFetch })),
      }
    : {}),
};
// VARIANTS=name,name... runs only those (e.g. to see whether fetch in the same process changes
// the request figures).
const only = CHILD
  ? [CHILD]
  : (process.env.VARIANTS?.split(',') ?? Object.keys(variants).filter((k) => k !== 'minimal-dispatcher')).concat(baseline ? ['mesh.request@baseline'] : []);
for (const k of Object.keys(variants)) if (!only.includes(k)) delete variants[k];
const names = Object.keys(variants);
const has = (...ks) => ks.every((k) => names.includes(k));

// New connections opened during a run (undici publishes each one).
let counting = false;
let opened = 0;
subscribe('undici:client:connected', () => {
  if (counting) opened++;
});

/** The process the current variant runs in (ISOLATE: its child). */
let clientPid = process.pid;
const meters = {
  client: cpuMeter(() => [clientPid]),
  pods: cpuMeter(() => [pods.pid]),
  proxy: cpuMeter(() => (proxy ? [proxy.pid] : [])),
};
const lapAll = () => {
  const r = Object.fromEntries(Object.entries(meters).map(([k, m]) => [k, m.lap()]));
  return { client: r.client.ours, pods: r.pods.ours, proxy: r.proxy.ours };
};

async function run(name, n) {
  opened = 0;
  counting = true;
  const result = await runLoad(variants[name], n, CONCURRENCY);
  counting = false;
  // Sent over IPC under ISOLATE: the error's message, not the error.
  return { ...result, firstError: result.firstError && { message: result.firstError.message }, connections: opened };
}

if (CHILD) {
  // Runs what the parent asks, until it disconnects.
  process.on('message', (n) => void run(CHILD, n).then((r) => process.send(r)));
  process.send('ready');
  await new Promise((resolve) => process.once('disconnect', resolve));
  await Promise.all(meshes.map((m) => m.close()));
  await Promise.all(agents.map((a) => a.close()));
  process.exit(0);
}

if (ISOLATE) {
  const env = {
    ...process.env,
    BENCH_PODS: JSON.stringify({ port: pods.port, pid: pods.pid }),
    ...(proxy ? { BENCH_PROXY: JSON.stringify({ url: proxy.url, pid: proxy.pid }) } : {}),
  };
  for (const name of names) {
    const child = fork(fileURLToPath(import.meta.url), { execPath: process.execPath, env: { ...env, BENCH_CHILD: name } });
    await new Promise((resolve, reject) => {
      child.once('message', resolve);
      child.once('exit', (code) => reject(new Error(`${name}: child exited with ${code}`)));
    });
    children.set(name, child);
  }
}

/** One run of `name`, here or (ISOLATE) in its child; cores are measured here either way. */
async function runVariant(name, n) {
  const child = children.get(name);
  clientPid = child ? child.pid : process.pid;
  lapAll();
  const result = child
    ? await new Promise((resolve) => {
        child.once('message', resolve);
        child.send(n);
      })
    : await run(name, n);
  return { ...result, cores: lapAll() };
}

await waitQuiet(ourPids);
for (const name of names) await runVariant(name, Math.min(REQUESTS, 5_000)); // warm-up: JIT, connections

const { rounds, discarded } = await pairedRounds({
  names,
  runOne: (name) => runVariant(name, Math.round(REQUESTS / 2)),
  prime: (name) => runVariant(name, 200),
  rounds: ROUNDS,
  otherLimit: OTHER_LIMIT,
  pids: ourPids,
  quietMs: 20_000,
  combine: (a, b) => ({
    ...combineRuns(a, b),
    connections: a.connections + b.connections,
    cores: Object.fromEntries(Object.keys(a.cores).map((k) => [k, (a.cores[k] + b.cores[k]) / 2])),
  }),
});

const med = (k, f) => medianOf(rounds, k, f);
console.log(
  `${REQUESTS} requests per variant and round (two runs), ${CONCURRENCY} in flight, ${PODS} pods, 1 KiB bodies; ${rounds.length} paired rounds` +
    (discarded ? ` (${discarded} more thrown away: other work on the machine)` : ''),
);
console.log(
  'cores busy (median):  ' +
    names
      .map(
        (k) =>
          `${k}: client ${med(k, (r) => r.cores.client).toFixed(2)}, pods ${med(k, (r) => r.cores.pods).toFixed(2)}` +
          (k.includes('proxy') ? `, nginx ${med(k, (r) => r.cores.proxy).toFixed(2)}` : ''),
      )
      .join('; '),
);
for (const name of names) {
  const conns = Math.max(...rounds.map((r) => r[name].connections));
  console.log(
    info(
      `${name} (client CPU ${med(name, (r) => r.cpuUs).toFixed(1)} us/req, ${conns} new conns)`,
      med(name, (r) => r.rps),
      'req/s',
      0,
    ),
  );
}
const ratioLine = (a, b, target) =>
  console.log(pairedLine(`${a} / ${b}`, pairedRatio(rounds, a, b), 'x', { sign: false, ...(target ? { target: { cmp: '>=', value: target } } : {}) }));
const cpuLine = (a, b) => console.log(pairedLine(`client CPU per request, ${a} - ${b}`, pairedDiff(rounds, a, b), 'us'));
if (has('minimal-dispatcher', 'undici.request')) ratioLine('minimal-dispatcher', 'undici.request');
if (has('mesh.request', 'undici.request')) ratioLine('mesh.request', 'undici.request', 0.9);
if (has('mesh.request@baseline', 'undici.request')) ratioLine('mesh.request@baseline', 'undici.request');
if (has('mesh.fetch', 'undici.fetch')) ratioLine('mesh.fetch', 'undici.fetch', 0.9);
if (!proxy) console.log('proxy hop: skipped (no nginx)');
if (has('mesh.request', 'undici.request via proxy')) ratioLine('mesh.request', 'undici.request via proxy', 1.3);
if (has('mesh.fetch', 'undici.fetch via proxy')) ratioLine('mesh.fetch', 'undici.fetch via proxy', 1.3);
if (has('minimal-dispatcher', 'undici.request')) cpuLine('minimal-dispatcher', 'undici.request');
if (has('mesh.request', 'undici.request')) cpuLine('mesh.request', 'undici.request');
if (has('mesh.request@baseline', 'undici.request')) cpuLine('mesh.request@baseline', 'undici.request');
if (has('mesh.request@baseline', 'mesh.request')) cpuLine('mesh.request@baseline', 'mesh.request');
if (has('mesh.fetch', 'undici.fetch')) cpuLine('mesh.fetch', 'undici.fetch');
console.log(loadLine());

for (const child of children.values()) child.disconnect();
await Promise.all([...children.values()].map((c) => new Promise((resolve) => (c.exitCode !== null ? resolve() : c.once('exit', resolve)))));
await Promise.all(meshes.map((m) => m.close()));
await Promise.all(agents.map((a) => a.close()));
await proxy?.stop();
await pods.stop();
