// bench/slow-pod (S6): one pod of eleven turns ten times slower for a while: how much of that do
// the callers feel under ROUND_ROBIN, LEAST_REQUEST and our PEAK_EWMA?
// After Linkerd's 2016 "Beyond Round Robin" experiment (11 backends, one of them degraded), with
// time scaled down to seconds: each pod answers in SERVICE_MS (+-20 %) and serves WORKERS
// requests at once, the rest queue, as a server with a fixed worker pool does; so the slowed pod
// also loses nine tenths of its capacity. Load: RATE requests per second, open loop (sent on
// schedule whatever is in flight), latency measured from the intended send time. The
// VirtualService route has a TIMEOUT (the mesh answers 504 when it passes); success = 200 within
// it. Pod 127.0.0.2 is SLOW_FACTOR x slower from SLOW_FROM_S to SLOW_TO_S of each DURATION_S run.
// Each policy gets a fresh mesh; the pods keep running (queues drained between runs).
// A second scenario ('latency') slows the pod without taking capacity from it (no worker limit:
// every request just takes 10x longer), the gentlest case for ROUND_ROBIN, whose p99 then is the
// slow pod's latency rather than its queue.
// Target (issue 3): PEAK_EWMA's p99 <= 1/10 of ROUND_ROBIN's (in each scenario).
// Run: npm run bench:slow-pod   (builds first)
import { createMesh } from '../dist/index.js';
import { loadLine, machineLine, onExit, percentile, podAddresses, row, sleep, sortedCopy, startPods, watchdog } from './lib/common.mjs';
import { serviceResources } from './lib/mesh-config.mjs';

const PODS = Number(process.env.PODS ?? 11);
const RATE = Number(process.env.RATE ?? 1_000);
const DURATION_S = Number(process.env.DURATION_S ?? 12);
const SLOW_FROM_S = Number(process.env.SLOW_FROM_S ?? 3);
const SLOW_TO_S = Number(process.env.SLOW_TO_S ?? 9);
const SLOW_FACTOR = Number(process.env.SLOW_FACTOR ?? 10);
const SERVICE_MS = Number(process.env.SERVICE_MS ?? 5);
const WORKERS = Number(process.env.WORKERS ?? 2);
const TIMEOUT = process.env.TIMEOUT ?? '1s';
const POLICIES = (process.env.POLICIES ?? 'ROUND_ROBIN,LEAST_REQUEST,PEAK_EWMA').split(',');
const SCENARIOS = (process.env.SCENARIOS ?? 'capacity,latency').split(',');
watchdog(60_000 + SCENARIOS.length * POLICIES.length * (DURATION_S + 20) * 1000, 'bench/slow-pod');
console.log(machineLine('bench/slow-pod (S6)'));

const addresses = podAddresses(PODS);
let pods;
onExit(() => pods && process.kill(pods.pid));
let url;
const timeoutMs = Number(TIMEOUT.replace(/s$/, '')) * 1000;

async function runPolicy(policy) {
  const mesh = await createMesh({ namespace: 'shop', watch: false, config: serviceResources({ port: pods.port, addresses, policy, timeout: TIMEOUT }) });
  // Warm-up at a tenth of the rate: JIT, connections, a first latency estimate.
  await openLoop(mesh, RATE / 10, 1_000);
  const before = await pods.stats();
  let windowStart;
  const slowTimers = [
    setTimeout(async () => {
      windowStart = await pods.stats();
      await pods.setSlow(0, SLOW_FACTOR);
    }, SLOW_FROM_S * 1000),
  ];
  let windowEnd;
  slowTimers.push(
    setTimeout(async () => {
      await pods.setSlow(0, 1);
      windowEnd = await pods.stats();
    }, SLOW_TO_S * 1000),
  );
  const result = await openLoop(mesh, RATE, DURATION_S * 1000);
  slowTimers.forEach(clearTimeout);
  await pods.setSlow(0, 1);
  const after = await pods.stats();
  await mesh.close();
  // Let the slow pod's queue drain before the next policy.
  for (let i = 0; i < 100 && (await pods.stats()).pods.some((p) => p.queued > 0); i++) await sleep(100);
  await sleep(500);
  const share = (from, to) => {
    if (!from || !to) return NaN;
    const served = to.pods.map((p, i) => p.served + p.dropped - from.pods[i].served - from.pods[i].dropped);
    return served[0] / served.reduce((a, b) => a + b, 0);
  };
  return { ...result, slowShare: share(windowStart, windowEnd), totalShare: share(before, after) };
}

/** Sends at `rate` for `ms`, open loop; latencies from the intended send time (ms). */
function openLoop(mesh, rate, ms) {
  return new Promise((resolve) => {
    const total = Math.floor((ms / 1000) * rate);
    const interval = 1000 / rate;
    const t0 = performance.now() + 5;
    const all = [];
    const inWindow = [];
    let ok = 0;
    let sent = 0;
    let done = 0;
    const finish = (due, success) => {
      const latency = performance.now() - due;
      all.push(latency);
      const at = (due - t0) / 1000;
      if (at >= SLOW_FROM_S && at < SLOW_TO_S) inWindow.push(latency);
      if (success && latency <= timeoutMs) ok++;
      if (++done === total) resolve({ total, ok, all, inWindow });
    };
    const send = (due) => {
      mesh.request(url).then(
        async (res) => {
          await res.body.dump();
          finish(due, res.statusCode === 200);
        },
        () => finish(due, false),
      );
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && t0 + sent * interval <= now) send(t0 + sent++ * interval);
      if (sent < total) setTimeout(tick, 1);
    };
    setTimeout(tick, 5);
  });
}

for (const scenario of SCENARIOS) {
  const workers = scenario === 'latency' ? 0 : WORKERS;
  pods = await startPods({ addresses, bodySize: 1024, serviceMs: SERVICE_MS, workers, jitter: 0.2 });
  url = `http://reviews:${pods.port}/reviews/1`;
  console.log(
    `scenario '${scenario}': ${PODS} pods (${SERVICE_MS} ms +-20 %, ${workers ? `${workers} at once each, the rest queue` : 'no limit on requests at once'}), ` +
      `${RATE} req/s open loop for ${DURATION_S} s per policy, pod 1 ${SLOW_FACTOR}x slower from ${SLOW_FROM_S} s to ${SLOW_TO_S} s, route timeout ${TIMEOUT}`,
  );
  const results = {};
  for (const policy of POLICIES) {
    const r = await runPolicy(policy);
    const all = sortedCopy(r.all);
    const win = sortedCopy(r.inWindow);
    const x = {
      success: r.ok / r.total,
      p50: percentile(all, 50),
      p99: percentile(all, 99),
      p999: percentile(all, 99.9),
      max: all[all.length - 1],
      wp99: percentile(win, 99),
      slowShare: r.slowShare,
    };
    results[policy] = x;
    console.log(
      `  ${policy.padEnd(14)} success ${(100 * x.success).toFixed(2)} %  p50 ${x.p50.toFixed(1)}  p99 ${x.p99.toFixed(1)}  p99.9 ${x.p999.toFixed(1)}  max ${x.max.toFixed(0)} ms;` +
        `  p99 while slow ${x.wp99.toFixed(1)} ms; slow pod's share while slow ${(100 * x.slowShare).toFixed(1)} %`,
    );
  }
  if (results.PEAK_EWMA && results.ROUND_ROBIN) {
    console.log(row(`${scenario}: PEAK_EWMA p99 / ROUND_ROBIN p99`, results.PEAK_EWMA.p99 / results.ROUND_ROBIN.p99, 'x', '<=', 0.1, 3));
  }
  await pods.stop();
}
console.log(loadLine());
