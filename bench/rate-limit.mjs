// bench/rate-limit (S8): client-side rate limiting.
// (a) Accuracy against real time: a RateLimitPolicy bucket of 500/s with a burst of 50 (maxTokens 50,
//     tokensPerFill 25 every 50 ms) under an open-loop offered load of 2,000 requests/s for 10 s,
//     sent with mesh.fetch to a real node:http pod on 127.0.0.2 (in a child process). Admitted
//     requests are counted from 200s; expected = burst + rate x duration. Target: within +-2 %.
// (b) Per-call cost of the local limiter: LocalLimiter.tryTake (one bucket; 1,000 keys), the same
//     limit in bottleneck's local datastore (what the local case would cost with bottleneck), and
//     what a RateLimitPolicy adds to one mesh dispatch (stub pools, no I/O). Target: limiter and
//     breaker together <= 1 us per call.
// Run: npm run bench:rate-limit   (builds first). DURATION_S, RATE, OFFERED, CALLS override.
import { setImmediate } from 'node:timers';
import Bottleneck from 'bottleneck';
import { createMesh, LocalLimiter } from '../dist/index.js';
import { info, loadLine, machineLine, median, onExit, row, startPods, watchdog } from './lib/common.mjs';
import { serviceResources, setPoolFactory, StubPool } from './lib/mesh-config.mjs';

const DURATION_S = Number(process.env.DURATION_S ?? 10);
const RATE = Number(process.env.RATE ?? 500);
const BURST = 50;
const FILL_MS = 50;
const OFFERED = Number(process.env.OFFERED ?? 2_000);
const CALLS = Number(process.env.CALLS ?? 1_000_000);
const ROUNDS = 11;
const WARMUP = 3;

watchdog(300_000, 'bench/rate-limit');
console.log(machineLine('bench/rate-limit (S8)'));

const policy = (name, maxTokens, tokensPerFill, fillInterval) => ({
  apiVersion: 'sidecarless.io/v1alpha1',
  kind: 'RateLimitPolicy',
  metadata: { name, namespace: 'shop' },
  spec: { host: name, limits: [{ name: 'all', tokenBucket: { maxTokens, tokensPerFill, fillInterval } }] },
});

// ---- (b) per-call cost ---------------------------------------------------------------------
function timeLoop(fn, n) {
  const t0 = process.hrtime.bigint();
  fn(n);
  return Number(process.hrtime.bigint() - t0) / n; // ns per call
}

function medianOf(fn, n) {
  const out = [];
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    const ns = timeLoop(fn, n);
    if (r >= WARMUP) out.push(ns);
  }
  return median(out);
}

// A bucket that never runs dry, so every call takes the admit path (the common one).
const big = { maxTokens: 2 ** 31, tokensPerFill: 1, fillIntervalMs: 1_000 };
const single = new LocalLimiter(big);
const keyed = new LocalLimiter(big);
const keys = Array.from({ length: 1_000 }, (_, i) => `user-${i}`);
let sink = 0;
const localNs = medianOf((n) => {
  const now = performance.now();
  for (let i = 0; i < n; i++) sink += single.tryTake('', now).remaining;
}, CALLS);
const keyedNs = medianOf((n) => {
  const now = performance.now();
  for (let i = 0; i < n; i++) sink += keyed.tryTake(keys[i % 1_000], now).remaining;
}, CALLS);

// bottleneck, local datastore, the same token bucket (reservoir + reservoirIncrease*): each call
// is a scheduled job (its API is asynchronous, and every datastore step yields to a timer), timed
// with many jobs in flight: wall time and CPU time per job, amortised.
async function bottleneckPerJob(n) {
  const limiter = new Bottleneck({
    reservoir: big.maxTokens,
    reservoirIncreaseAmount: big.tokensPerFill,
    reservoirIncreaseInterval: big.fillIntervalMs,
    reservoirIncreaseMaximum: big.maxTokens,
  });
  const job = () => Promise.resolve(1);
  const wall = [];
  const cpu = [];
  for (let r = 0; r < 1 + 3; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const all = [];
    for (let i = 0; i < n; i++) all.push(limiter.schedule(job));
    await Promise.all(all);
    const c = process.cpuUsage(c0);
    if (r >= 1) {
      wall.push(Number(process.hrtime.bigint() - t0) / n);
      cpu.push(((c.user + c.system) * 1000) / n);
    }
  }
  await limiter.stop({ dropWaitingJobs: false });
  return { wall: median(wall), cpu: median(cpu) };
}
const bottleneckLocal = await bottleneckPerJob(1_000);

// What a RateLimitPolicy adds to one dispatch: the same stub mesh with and without a limit.
async function dispatchNs(withLimit) {
  const port = 9080;
  const config = serviceResources({ name: 'reviews', port, addresses: ['127.0.0.2', '127.0.0.3'] });
  if (withLimit) config.push(policy('reviews', 2 ** 31, 1, '1s'));
  const mesh = await createMesh({ namespace: 'shop', watch: false, dns: false, config });
  setPoolFactory(mesh, () => new StubPool());
  const handler = {
    onRequestStart() {},
    onResponseStart() {},
    onResponseData() {},
    onResponseEnd() {},
    onResponseError(_c, e) {
      throw e;
    },
  };
  const opts = { origin: `http://reviews:${port}`, path: '/reviews/1', method: 'GET', headers: { 'user-agent': 'bench' } };
  const ns = medianOf((n) => {
    for (let i = 0; i < n; i++) mesh.dispatcher.dispatch(opts, handler);
  }, 100_000);
  await mesh.close();
  return ns;
}
const plainDispatch = await dispatchNs(false);
const limitedDispatch = await dispatchNs(true);

// ---- (a) accuracy against real time -------------------------------------------------------
const pods = await startPods({ addresses: ['127.0.0.2'], bodySize: 16 });
onExit(() => pods.stop());
const mesh = await createMesh({
  namespace: 'shop',
  watch: false,
  dns: false,
  config: [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'limited', namespace: 'shop' },
      spec: {
        hosts: ['limited.shop.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: pods.port, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.2' }],
      },
    },
    policy('limited', BURST, (RATE * FILL_MS) / 1000, `${FILL_MS}ms`),
  ],
});
const url = `http://limited:${pods.port}/`;
// The bucket is made (full) by the first request; counting starts there.
let admitted = 0;
let refused = 0;
let failed = 0;
const inflight = new Set();
const fire = () => {
  const p = mesh
    .fetch(url)
    .then(async (res) => {
      await res.arrayBuffer();
      if (res.status === 200) admitted++;
      else if (res.status === 429) refused++;
      else failed++;
    })
    .catch(() => failed++)
    .finally(() => inflight.delete(p));
  inflight.add(p);
};
const interval = 1000 / OFFERED;
const durationMs = DURATION_S * 1000;
const start = performance.now();
let sent = 0;
for (;;) {
  const elapsed = performance.now() - start;
  if (elapsed >= durationMs) break;
  const due = Math.min(Math.floor(elapsed / interval) + 1, Math.ceil(durationMs / interval));
  while (sent < due) {
    fire();
    sent++;
  }
  await new Promise((resolve) => setImmediate(resolve));
}
const sendingMs = performance.now() - start;
await Promise.all(inflight);
await mesh.close();
await pods.stop();

const expected = BURST + RATE * DURATION_S;
const deviation = ((admitted - expected) / expected) * 100;
console.log(
  `(a) ${RATE}/s bucket, burst ${BURST} (tokensPerFill ${(RATE * FILL_MS) / 1000} every ${FILL_MS} ms), offered ${OFFERED}/s open loop for ${DURATION_S} s,`,
);
console.log('    through mesh.fetch to a real loopback pod (127.0.0.2, child process), real time');
console.log(info('requests sent', sent, '', 0));
console.log(info('offered rate achieved', (sent / sendingMs) * 1000, '/s', 0));
console.log(info('admitted (200)', admitted, '', 0));
console.log(info('refused (429)', refused, '', 0));
if (failed > 0) console.log(info('failed (neither 200 nor 429)', failed, '', 0));
console.log(info('expected admitted (burst + rate x duration)', expected, '', 0));
console.log(row('deviation from expected', Math.abs(deviation), '%', '<=', 2, 2));
console.log(`(b) per call, median of ${ROUNDS} rounds after ${WARMUP} warm-up rounds`);
console.log(info('LocalLimiter.tryTake, one bucket', localNs, 'ns', 1));
console.log(info('LocalLimiter.tryTake, 1,000 keys (LRU map)', keyedNs, 'ns', 1));
console.log(info('bottleneck local reservoir, wall time per job (amortised)', bottleneckLocal.wall, 'ns', 0));
console.log(info('bottleneck local reservoir, CPU time per job (amortised)', bottleneckLocal.cpu, 'ns', 0));
console.log(info('bottleneck CPU per job / LocalLimiter.tryTake', bottleneckLocal.cpu / localNs, 'x', 0));
console.log(info('mesh dispatch without a limit (stub pools)', plainDispatch, 'ns', 0));
console.log(info('mesh dispatch with a RateLimitPolicy limit', limitedDispatch, 'ns', 0));
console.log(row('added to a dispatch by the limit (limiter budget)', limitedDispatch - plainDispatch, 'ns', '<=', 1000, 0));
console.log(loadLine());
if (sink === 42) console.log('');
