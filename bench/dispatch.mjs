// bench/dispatch (S1): the mesh's own cost per call, with no I/O. Every endpoint's connection pool
// is a stub that answers at once, so what is timed is host -> service, route matching (two match
// rules miss before the default route), weighted destination, cluster lookup, balancer pick,
// header copy, upstream handler and pool lookup. undici's Agent.dispatch in front of the same stub
// is printed for context (what any undici call costs before the socket).
// A second section, in a child process of its own (so the two loops do not share JIT feedback),
// compares whole awaited calls: mesh.request -> stub against undici.request(Agent -> stub).
// Target (issue 3): <= 2 us per mesh.dispatcher.dispatch call.
// Run: npm run bench:dispatch   (builds first)
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Agent, request as undiciRequest } from 'undici';
import { createMesh } from '../dist/index.js';
import { info, loadLine, machineLine, median, row, watchdog } from './lib/common.mjs';
import { serviceResources, setPoolFactory, StubPool } from './lib/mesh-config.mjs';

const CALLS = Number(process.env.CALLS ?? 50_000);
const ROUNDS = Number(process.env.ROUNDS ?? 21);
const REQUEST_CALLS = Number(process.env.REQUEST_CALLS ?? 20_000);
const REQUEST_ROUNDS = Number(process.env.REQUEST_ROUNDS ?? 11);
const WARMUP = 3;
const PORT = 9080;
const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const headers = { 'user-agent': 'bench', accept: 'application/json', 'x-request-id': '6f1c2d4e-0000-4000-8000-000000000000' };

async function stubMesh() {
  const mesh = await createMesh({
    namespace: 'shop',
    watch: false,
    config: [
      ...serviceResources({ name: 'reviews', port: PORT, addresses, policy: 'ROUND_ROBIN' }),
      ...serviceResources({ name: 'ratings', port: PORT, addresses, policy: 'LEAST_REQUEST' }),
      ...serviceResources({ name: 'details', port: PORT, addresses, policy: 'PEAK_EWMA' }),
    ],
  });
  const stub = new StubPool();
  setPoolFactory(mesh, () => stub);
  return { mesh, stub };
}

if (process.env.BENCH_SECTION === 'request') {
  // Child: whole awaited calls, alternating, median per variant; answers with JSON.
  const { mesh, stub } = await stubMesh();
  const agent = new Agent({ factory: () => new StubPool() });
  const variants = {
    agent: () => undiciRequest(`http://127.0.0.2:${PORT}/reviews/1?page=2`, { dispatcher: agent, headers }),
    mesh: () => mesh.request(`http://reviews:${PORT}/reviews/1?page=2`, { headers }),
  };
  const times = { agent: [], mesh: [] };
  for (let round = 0; round < WARMUP + REQUEST_ROUNDS; round++) {
    for (const [name, fn] of Object.entries(variants)) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < REQUEST_CALLS; i++) {
        const res = await fn();
        if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
        await res.body.dump();
      }
      if (round >= WARMUP) times[name].push(Number(process.hrtime.bigint() - t0) / REQUEST_CALLS / 1000);
    }
  }
  process.send({ agent: median(times.agent), mesh: median(times.mesh), stubCalls: stub.calls });
  await mesh.close();
  await agent.close();
  process.exit(0);
}

watchdog(300_000, 'bench/dispatch');
console.log(machineLine('bench/dispatch (S1)'));
const { mesh, stub: meshStub } = await stubMesh();
const agentStub = new StubPool();
const agent = new Agent({ factory: () => agentStub });

let responses = 0;
let errors = 0;
let lastError;
const handler = {
  onRequestStart() {},
  onResponseStart(_c, status) {
    if (status === 200) responses++;
  },
  onResponseData() {},
  onResponseEnd() {},
  onResponseError(_c, error) {
    errors++;
    lastError = error;
  },
};
const opts = (origin, extra = {}) => ({ origin, path: '/reviews/1?page=2', method: 'GET', headers: { ...headers, ...extra } });

const dispatcher = mesh.dispatcher;
const AGENT = 'undici Agent.dispatch -> stub (context)';
const MAIN = 'mesh dispatch, default route, ROUND_ROBIN';
const variants = {
  [AGENT]: [agent, opts(`http://127.0.0.2:${PORT}`)],
  [MAIN]: [dispatcher, opts(`http://reviews:${PORT}`)],
  'mesh dispatch, header-matched route (subset)': [dispatcher, opts(`http://reviews:${PORT}`, { 'end-user': 'jason' })],
  'mesh dispatch, default route, LEAST_REQUEST': [dispatcher, opts(`http://ratings:${PORT}`)],
  'mesh dispatch, default route, PEAK_EWMA': [dispatcher, opts(`http://details:${PORT}`)],
};

function timeDispatch(d, o, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) d.dispatch(o, handler);
  return Number(process.hrtime.bigint() - t0) / n / 1000; // us per call
}

const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round < WARMUP + ROUNDS; round++) {
  for (const [name, [d, o]] of Object.entries(variants)) {
    const us = timeDispatch(d, o, CALLS);
    if (round >= WARMUP) times[name].push(us);
  }
}
const meshCalls = (WARMUP + ROUNDS) * CALLS * 4;
if (errors > 0 || responses !== meshCalls + (WARMUP + ROUNDS) * CALLS) {
  console.log(`WARNING: ${errors} errors, ${responses} responses: ${lastError?.message ?? ''}`);
}
if (meshStub.calls !== meshCalls) console.log(`WARNING: the stub pool saw ${meshStub.calls} calls, expected ${meshCalls}`);
await mesh.close();
await agent.close();

const child = fork(fileURLToPath(import.meta.url), { execPath: process.execPath, env: { ...process.env, BENCH_SECTION: 'request' } });
const req = await new Promise((resolve, reject) => {
  child.once('message', resolve);
  child.once('exit', (code) => reject(new Error(`request section exited with ${code}`)));
});

const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
console.log(`per call, median of ${ROUNDS} rounds of ${CALLS} calls, after ${WARMUP} warm-up rounds`);
for (const name of Object.keys(variants)) {
  if (name === AGENT) console.log(info(name, m[name], 'us', 3));
  else console.log(row(name, m[name], 'us', '<=', 2, 3));
}
console.log(`whole awaited calls (separate process), median of ${REQUEST_ROUNDS} rounds of ${REQUEST_CALLS}`);
console.log(info('undici.request(Agent -> stub), awaited (context)', req.agent, 'us', 3));
console.log(info('mesh.request -> stub, awaited', req.mesh, 'us', 3));
console.log(info('mesh.request added over undici.request, no I/O', req.mesh - req.agent, 'us', 3));
console.log(loadLine());
