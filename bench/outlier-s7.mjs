// bench/outlier-s7 (S7): five pods, one answers 503 for a while, RATE requests per second offered
// through mesh.fetch (open loop: sent on schedule whatever is in flight). The DestinationRule has
// outlierDetection (consecutive5xxErrors 5, interval 1s, baseEjectionTime 2s, maxEjectionPercent
// 100). Two runs, each on a fresh mesh:
//   default retries  no `retries` on the route: Istio's default policy retries 503 on another pod
//                    -> target: 0 errors seen by the caller
//   retries off      `retries: { attempts: 0 }`: every 503 the bad pod sends reaches the caller
//                    -> target: at most consecutive5xxErrors (5) errors per ejection
// and in both, the pod is back in rotation after its ejection time once healthy: it answers
// requests again before the run ends (target: it served requests after its last return).
// Times are seconds from the start of the run's load. Each ejection and return is a mesh
// 'ejection' event.
// Run: npm run bench:s7   (builds first)
import { createMesh } from '../dist/index.js';
import { loadLine, machineLine, onExit, podAddresses, sleep, startPods, watchdog } from './lib/common.mjs';
import { serviceResources } from './lib/mesh-config.mjs';

const PODS = 5;
const RATE = Number(process.env.RATE ?? 500);
const DURATION_S = Number(process.env.DURATION_S ?? 12);
const FAIL_FROM_S = Number(process.env.FAIL_FROM_S ?? 2);
const FAIL_TO_S = Number(process.env.FAIL_TO_S ?? 5);
const CONSECUTIVE = 5;
const OUTLIER = { consecutive5xxErrors: CONSECUTIVE, interval: '1s', baseEjectionTime: '2s', maxEjectionPercent: 100 };
watchdog(60_000 + 2 * (DURATION_S + 10) * 1000, 'bench/outlier-s7');
console.log(machineLine('bench/outlier-s7 (S7)'));

const addresses = podAddresses(PODS);
const pods = await startPods({ addresses, bodySize: 256 });
onExit(() => process.kill(pods.pid));
const url = `http://reviews:${pods.port}/reviews/1`;

function resources(retriesOff) {
  return serviceResources({ port: pods.port, addresses, policy: 'ROUND_ROBIN' }).map((r) => {
    if (r.kind === 'DestinationRule') return { ...r, spec: { ...r.spec, trafficPolicy: { ...r.spec.trafficPolicy, outlierDetection: OUTLIER } } };
    if (r.kind === 'VirtualService' && retriesOff) {
      const http = r.spec.http.map((route) => (route.name === 'default' ? { ...route, retries: { attempts: 0 } } : route));
      return { ...r, spec: { ...r.spec, http } };
    }
    return r;
  });
}

/** Sends at `rate` for `ms`, open loop; resolves with the send time (s from t0) of every error. */
function openLoop(mesh, rate, ms, t0) {
  return new Promise((resolve) => {
    const total = Math.floor((ms / 1000) * rate);
    const interval = 1000 / rate;
    const errors = [];
    let sent = 0;
    let done = 0;
    const finish = (due, ok) => {
      if (!ok) errors.push((due - t0) / 1000);
      if (++done === total) resolve({ total, errors });
    };
    const send = (due) => {
      mesh.fetch(url).then(
        async (res) => {
          await res.arrayBuffer();
          finish(due, res.status === 200);
        },
        () => finish(due, false),
      );
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && t0 + sent * interval <= now) send(t0 + sent++ * interval);
      if (sent < total) setTimeout(tick, 1);
    };
    tick();
  });
}

async function run(retriesOff) {
  const mesh = await createMesh({ namespace: 'shop', watch: false, dns: false, config: resources(retriesOff) });
  // Warm-up, all pods healthy: JIT and connections.
  await openLoop(mesh, RATE / 10, 1_000, performance.now());
  const t0 = performance.now() + 5;
  const events = [];
  let servedAtLastReturn;
  mesh.on('ejection', (e) => {
    if (e.endpoint !== `${addresses[0]}:${pods.port}`) return;
    const event = { action: e.action, at: (performance.now() - t0) / 1000, durationMs: e.durationMs };
    events.push(event);
    if (e.action !== 'eject') void pods.stats().then((s) => (event.served = s.pods[0].served));
  });
  const timers = [
    setTimeout(() => void pods.setFailing(0, 503), t0 - performance.now() + FAIL_FROM_S * 1000),
    setTimeout(() => void pods.setFailing(0, 0), t0 - performance.now() + FAIL_TO_S * 1000),
  ];
  const result = await openLoop(mesh, RATE, DURATION_S * 1000, t0);
  timers.forEach(clearTimeout);
  await pods.setFailing(0, 0);
  const end = await pods.stats();
  await mesh.close();
  const lastReturn = events.findLast((e) => e.action !== 'eject');
  servedAtLastReturn = lastReturn?.served;
  const servedAfterReturn = lastReturn && servedAtLastReturn !== undefined ? end.pods[0].served - servedAtLastReturn : 0;
  return { ...result, events, servedAfterReturn, lastReturn };
}

const verdict = (ok) => (ok ? 'PASS' : 'MISS');
console.log(
  `${PODS} pods, ${RATE} req/s open loop for ${DURATION_S} s per run, pod ${addresses[0]} answers 503 from ${FAIL_FROM_S} s to ${FAIL_TO_S} s; ` +
    `outlierDetection ${JSON.stringify(OUTLIER)}`,
);
let allPass = true;
for (const retriesOff of [false, true]) {
  const name = retriesOff ? 'retries off' : 'default retries';
  const r = await run(retriesOff);
  const ejections = r.events.filter((e) => e.action === 'eject').length;
  console.log(
    `  ${name}: ${r.total} requests, ${r.errors.length} errors seen by the caller` +
      (r.errors.length ? ` (sent at ${r.errors[0].toFixed(2)} s .. ${r.errors.at(-1).toFixed(2)} s)` : ''),
  );
  for (const e of r.events) {
    console.log(`    ${e.at.toFixed(2).padStart(6)} s  ${e.action === 'eject' ? `ejected for ${e.durationMs / 1000} s` : 'back in rotation'}`);
  }
  const checks = [];
  if (retriesOff) {
    const perEjection = ejections ? r.errors.length / ejections : r.errors.length;
    checks.push([
      `errors per ejection ${perEjection.toFixed(1)} (${r.errors.length} / ${ejections} ejections), target <= ${CONSECUTIVE}`,
      ejections > 0 && perEjection <= CONSECUTIVE,
    ]);
  } else {
    checks.push([`caller-visible errors ${r.errors.length}, target 0`, r.errors.length === 0]);
    checks.push([`ejected at least once (${ejections})`, ejections > 0]);
  }
  const back = r.lastReturn !== undefined && r.lastReturn.at >= FAIL_TO_S && r.servedAfterReturn > 0;
  checks.push([
    r.lastReturn
      ? `back in rotation at ${r.lastReturn.at.toFixed(2)} s (healthy since ${FAIL_TO_S} s), then answered ${r.servedAfterReturn} requests`
      : 'never returned to rotation',
    back,
  ]);
  for (const [what, ok] of checks) {
    allPass &&= ok;
    console.log(`    ${verdict(ok)}  ${what}`);
  }
  await sleep(200);
}
await pods.stop();
console.log(`S7: ${verdict(allPass)}`);
console.log(loadLine());
