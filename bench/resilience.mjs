// bench/resilience: what connection-pool limits, outlier detection and a service breaker add to
// one mesh.dispatcher.dispatch call, with no I/O (every endpoint's pool is a stub that answers at
// once with 200). Five services differ only in their DestinationRule / breaker / limits:
//   none       loadBalancer only: UNLIMITED limits, no detector, no breaker (the baseline)
//   limits     connectionPool.http limits + retryBudget: admission bookkeeping per request
//   outlier    outlierDetection: one report per request
//   breaker    a service breaker (opossum): one admission and one settle per request
//   limit      a LOCAL RateLimitPolicy (a rate it never reaches): one token per request
//   limit-breaker  both: S8's budget, "local limiter plus breaker <= 1 us per call together",
//              measured as what they add over the baseline
//   full       S1 with the full stack on: connectionPool limits + retryBudget + outlierDetection
//              + a service breaker + a LOCAL RateLimitPolicy (a rate it never reaches) + the
//              VirtualService's default route with retries (perTryTimeout) and a timeout, after
//              a header-match route. Target (issue 4): <= 3 us per call, absolute.
// The variants alternate within each round, so drift hits them alike; medians of the rounds.
// Run: npm run bench:resilience   (builds first)
import { setImmediate } from 'node:timers';
import { createMesh } from '../dist/index.js';
import { info, loadLine, machineLine, median, row, watchdog } from './lib/common.mjs';
import { serviceResources, setPoolFactory, StubPool } from './lib/mesh-config.mjs';

const CALLS = Number(process.env.CALLS ?? 50_000);
const ROUNDS = Number(process.env.ROUNDS ?? 21);
const WARMUP = 3;
const PORT = 9080;
const addresses = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];

const policies = {
  none: {},
  limits: {
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 1000, http2MaxRequests: 1000, maxRetries: 3 } },
    retryBudget: { percent: 20 },
  },
  outlier: { outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 } },
  breaker: {},
  limit: {},
  'limit-breaker': {},
  full: {
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 1000, http2MaxRequests: 1000, maxRetries: 3 } },
    retryBudget: { percent: 20 },
    outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50 },
  },
};

/** The full variant's default route: retries with a per-try timeout, and a route timeout. */
const fullRoute = { retries: { attempts: 2, perTryTimeout: '1s', retryOn: 'connect-failure,refused-stream,503' }, timeout: '5s' };

/** A local limit far above any rate the bench reaches: every call pays for a token, none is refused. */
const neverReached = (host) => ({
  apiVersion: 'sidecarless.io/v1alpha1',
  kind: 'RateLimitPolicy',
  metadata: { name: host, namespace: 'shop' },
  spec: { host, limits: [{ name: 'never', tokenBucket: { maxTokens: 1_000_000_000, tokensPerFill: 1_000_000_000, fillInterval: '1s' } }] },
});

function resources() {
  const services = Object.entries(policies).flatMap(([name, extra]) =>
    serviceResources({ name, port: PORT, addresses, policy: 'ROUND_ROBIN' }).map((r) => {
      if (r.kind === 'DestinationRule') return { ...r, spec: { ...r.spec, trafficPolicy: { ...r.spec.trafficPolicy, ...extra } } };
      if (r.kind === 'VirtualService' && name === 'full') {
        return { ...r, spec: { ...r.spec, http: r.spec.http.map((h) => (h.name === 'default' ? { ...h, ...fullRoute } : h)) } };
      }
      return r;
    }),
  );
  return [...services, ...['limit', 'limit-breaker', 'full'].map(neverReached)];
}

watchdog(300_000, 'bench/resilience');
console.log(machineLine('bench/resilience'));
const mesh = await createMesh({
  namespace: 'shop',
  watch: false,
  dns: false,
  config: resources(),
  breakers: {
    breaker: { errorThresholdPercentage: 50, resetTimeout: 30_000 },
    'limit-breaker': { errorThresholdPercentage: 50, resetTimeout: 30_000 },
    full: { errorThresholdPercentage: 50, resetTimeout: 30_000 },
  },
});
const stub = new StubPool();
setPoolFactory(mesh, () => stub);

let errors = 0;
const handler = {
  onRequestStart() {},
  onResponseStart(_c, status) {
    if (status !== 200) errors++;
  },
  onResponseData() {},
  onResponseEnd() {},
  onResponseError() {
    errors++;
  },
};
const opts = (name) => ({ origin: `http://${name}:${PORT}`, path: '/reviews/1', method: 'GET', headers: { accept: 'application/json' } });

const times = Object.fromEntries(Object.keys(policies).map((k) => [k, []]));
for (let round = 0; round < WARMUP + ROUNDS; round++) {
  for (const name of Object.keys(policies)) {
    const o = opts(name);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) mesh.dispatcher.dispatch(o, handler);
    if (round >= WARMUP) times[name].push(Number(process.hrtime.bigint() - t0) / CALLS / 1000);
    // Let opossum's promise callbacks run between rounds.
    await new Promise((resolve) => setImmediate(resolve));
  }
}
if (errors > 0) console.log(`WARNING: ${errors} non-200 answers`);
await mesh.close();

const m = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
console.log(`per dispatch call, median of ${ROUNDS} rounds of ${CALLS} calls, after ${WARMUP} warm-up rounds`);
console.log(info('none (baseline: no limits, detector or breaker)', m.none, 'us', 3));
for (const name of ['limits', 'outlier', 'breaker', 'limit', 'limit-breaker', 'full']) {
  console.log(info(`${name}`, m[name], 'us', 3));
  console.log(info(`${name}: added over the baseline`, m[name] - m.none, 'us', 3));
}
const fullOk = m.full <= 3;
console.log(row('S1: full stack on, per call', m.full, 'us', '<=', 3, 3));
console.log(`S1 full stack: ${fullOk ? 'PASS' : 'MISS'}`);
const s8 = m['limit-breaker'] - m.none;
console.log(row('S8: local limiter + breaker, added per call', s8, 'us', '<=', 1, 3));
console.log(`S8 limiter + breaker: ${s8 <= 1 ? 'PASS' : 'MISS'}`);
console.log(loadLine());
