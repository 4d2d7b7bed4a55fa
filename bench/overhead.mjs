// bench/overhead (issue 14): the client CPU the mesh adds to each request, where users pay it.
//
// One process, 4 pods (node:http, 1 KiB bodies) in a child process, keep-alive, 16 requests in
// flight. Paired rounds (bench/lib/paired.mjs): each round runs every variant of a phase twice,
// back to back, forward then backward (raw routing full full routing raw; the next round the other
// way round), REQUESTS requests per run; client CPU per request is process.cpuUsage() (user +
// system, all threads) over a variant's two runs divided by their requests; a figure is the median
// of the per-round differences mesh - raw (or ratios), with its interquartile range.
//
// Phase `policy` (no OpenTelemetry SDK registered, as most applications run):
//   raw      undici.request to the pods, client-side round robin over their 4 addresses, one undici
//            Pool per pod made with the options the mesh gives its per-endpoint pools
//   routing  mesh.request, "routing only": ServiceEntry (STATIC, the 4 pods), VirtualService of
//            three routes (a header match and a prefix rewrite miss before the default route),
//            DestinationRule with subsets and ROUND_ROBIN (the balancer the raw client mimics),
//            retries off on every route (`retries: { attempts: 0 }`; without it Istio's default,
//            2 retries, applies), no outlier detection, no connection-pool limits, no route timeout
//   full     the same routes with Istio's default retry policy (no `retries` written: 2 retries on
//            connect-failure, refused-stream, unavailable, cancelled, 503), LEAST_REQUEST and
//            outlierDetection (consecutive5xxErrors 5, interval 10s, baseEjectionTime 30s)
//   raw-lr   raw undici.request choosing its pod as LEAST_REQUEST does (two at random, the one with
//            fewer requests in flight): what the full policy's balancing does to the traffic, which
//            any client choosing so pays; `full - raw-lr` is the rest
//   floor    (FLOOR=1) the least an in-process dispatcher does: undici.request through a Dispatcher
//            that round-robins over the raw client's 4 Pools and sets the Host header to the service
//            name, as the mesh does; what is left of `routing - raw` above it is the mesh's own work
// Phase `tracing` (the SDK registered: sdk-trace, always-on sampler, BatchSpanProcessor with an
// exporter that drops batches, AsyncLocalStorage context manager, as bench/telemetry-s9.mjs):
//   full     as above (`tracing: false`: the mesh records nothing)
//   traced   the full policy with `telemetry: { tracing: 'own', metrics: false }`: every request
//            traced (the request span and its attempt's span); spans queued in the batch processor
//            are flushed inside each timed run, so their export is paid by the run
//   once, once-traced  the full policy with retries off (`attempts: 0`), untraced and traced: one
//            span per request, as for a caller that has a span of its own (a server handling a
//            request); `traced` makes two, the request's INTERNAL span and its attempt's
//   raw, raw-traced  the raw client, untraced and with the least a tracing client does: one CLIENT
//            span per request with the four attributes the conventions want at its start, trace
//            context injected, the status set, ended with the response. `raw-traced / raw` is what
//            tracing every request costs on this SDK without any mesh: the floor for `once-traced / once`;
//            `(once-traced / once) / (raw-traced / raw)`, per round, is what the mesh's own tracing
//            code costs beyond the SDK's span (1.00: nothing)
// Targets (issue 14): routing only <= 4 us, full policy <= 6 us of client CPU per request over raw;
// traced >= 0.90x the untraced throughput.
//
// Each run also reports the bytes it allocated per request (paired the same way) and the CPU per
// request on threads other than the main one (V8's GC helpers and compilers).
//
// Run: npm run bench:overhead   (builds first). Environment:
//   ROUNDS (30), REQUESTS (5000 per run, two runs per variant and round), CONCURRENCY (16), PODS (4), PHASES (policy,tracing),
//   OTHER_LIMIT (0.25 cores: rounds during which other processes used more are thrown away;
//   the machine is shared), WARMUP (20000 requests per variant before the rounds)
//   PROFILE=cpu,heap  after each phase's rounds, profile its variants for PROFILE_REQUESTS (200000)
//   requests each, in PROFILE_CHUNKS (10) chunks taken in alternating order like the rounds
//   (inspector Profiler sampling every 100 us; HeapProfiler sampling every 1 KiB, objects the GC
//   already took included), write them with a meta.json to PROFILE_DIR (.tmp/profiles/overhead),
//   then print their summary (bench/lib/profile-summary.mjs, which also reads the directory alone).
//   ROUNDS=0 PROFILE=cpu,heap profiles without measuring.
//   SAVE=file.json  writes every kept round's figures per phase, for a look across runs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { resolve } from 'node:path';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { Dispatcher, Pool, request as undiciRequest } from 'undici';
import { createMesh } from '../dist/index.js';
import { loadLine, machineLine, onExit, podAddresses, startPods, waitQuiet, watchdog } from './lib/common.mjs';
import { serviceResources } from './lib/mesh-config.mjs';
import { medianOf, pairedDiff, pairedLine, pairedRatio, pairedRounds, quartiles, runLoad } from './lib/paired.mjs';
import { printSummary } from './lib/profile-summary.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const REQUESTS = Number(process.env.REQUESTS ?? 5_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const PODS = Number(process.env.PODS ?? 4);
const OTHER_LIMIT = Number(process.env.OTHER_LIMIT ?? 0.25);
const WARMUP = Number(process.env.WARMUP ?? 20_000);
const FLOOR = process.env.FLOOR === '1';
const PHASES = (process.env.PHASES ?? 'policy,tracing').split(',').filter(Boolean);
const PROFILE = (process.env.PROFILE ?? '').split(',').filter(Boolean);
const PROFILE_REQUESTS = Number(process.env.PROFILE_REQUESTS ?? 200_000);
const PROFILE_CHUNKS = Number(process.env.PROFILE_CHUNKS ?? 10);
const PROFILE_DIR = resolve(process.env.PROFILE_DIR ?? '.tmp/profiles/overhead');
const SAVE = process.env.SAVE;
const ENV_KEYS = [
  'ROUNDS',
  'REQUESTS',
  'CONCURRENCY',
  'PODS',
  'OTHER_LIMIT',
  'WARMUP',
  'FLOOR',
  'PHASES',
  'PROFILE',
  'PROFILE_REQUESTS',
  'PROFILE_CHUNKS',
  'PROFILE_DIR',
];
const TARGET_ROUTING_US = 4;
const TARGET_FULL_US = 6;
const TARGET_TRACED_RATIO = 0.9;
watchdog(3_600_000, 'bench/overhead');
console.log(machineLine('bench/overhead (issue 14)'));

const addresses = podAddresses(PODS);
const pods = await startPods({ addresses, bodySize: 1024 });
onExit(() => process.kill(pods.pid));
const pids = () => [process.pid, pods.pid];

// raw: one Pool per pod, as the mesh's defaultPoolFactory makes them for a plaintext endpoint.
const pools = addresses.map(
  (a) => new Pool(`http://${a}:${pods.port}`, { connections: null, pipelining: 1, connectTimeout: 10_000, keepAliveTimeout: 4_000, allowH2: false }),
);
const rawUrls = addresses.map((a) => `http://${a}:${pods.port}/reviews/1`);
const meshUrl = `http://reviews:${pods.port}/reviews/1`;

const routingConfig = serviceResources({ port: pods.port, addresses, policy: 'ROUND_ROBIN', retries: { attempts: 0 } });
const fullConfig = serviceResources({
  port: pods.port,
  addresses,
  policy: 'LEAST_REQUEST',
  outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
});
// Retries off: the mesh makes one span per traced request (no request span for attempts to share).
const onceConfig = serviceResources({
  port: pods.port,
  addresses,
  policy: 'LEAST_REQUEST',
  outlierDetection: { consecutive5xxErrors: 5, interval: '10s', baseEjectionTime: '30s' },
  retries: { attempts: 0 },
});
const base = { namespace: 'shop', watch: false };
const routing = await createMesh({ ...base, config: routingConfig, telemetry: { tracing: false } });
const full = await createMesh({ ...base, config: fullConfig, telemetry: { tracing: false } });
const tracingPhase = PHASES.includes('tracing');
const traced = tracingPhase ? await createMesh({ ...base, config: fullConfig, telemetry: { tracing: 'own', metrics: false } }) : undefined;
const once = tracingPhase ? await createMesh({ ...base, config: onceConfig, telemetry: { tracing: false } }) : undefined;
const onceTraced = tracingPhase ? await createMesh({ ...base, config: onceConfig, telemetry: { tracing: 'own', metrics: false } }) : undefined;

async function consume(promise) {
  const res = await promise;
  const body = await res.body.arrayBuffer();
  if (res.statusCode !== 200 || body.byteLength !== 1024) throw new Error(`status ${res.statusCode}, ${body.byteLength} bytes`);
}

/** `floor`: round robin over the raw Pools with the Host header the mesh sends, nothing else. */
class FloorDispatcher extends Dispatcher {
  next = 0;
  headers = { host: `reviews:${pods.port}` };
  dispatch(opts, handler) {
    return pools[this.next++ % PODS].dispatch({ ...opts, headers: this.headers }, handler);
  }
}
const floor = new FloorDispatcher();

let provider;
let rawTracer;
const tracer = () => (rawTracer ??= trace.getTracer('bench-raw'));
/** Requests in flight per pod, for `raw-lr`'s choice. */
const inFlight = new Array(PODS).fill(0);
const exported = { spans: 0 };
const variants = {
  raw: (i) => consume(undiciRequest(rawUrls[i % PODS], { dispatcher: pools[i % PODS] })),
  'raw-lr': async () => {
    const random = () => Math.floor(Math.random() * PODS);
    let pod = random();
    const other = random();
    if (inFlight[other] < inFlight[pod]) pod = other;
    inFlight[pod]++;
    try {
      await consume(undiciRequest(rawUrls[pod], { dispatcher: pools[pod] }));
    } finally {
      inFlight[pod]--;
    }
  },
  'raw-traced': async (i) => {
    const url = rawUrls[i % PODS];
    const span = tracer().startSpan('GET', {
      kind: 2, // CLIENT
      attributes: { 'http.request.method': 'GET', 'server.address': addresses[i % PODS], 'server.port': pods.port, 'url.full': url },
    });
    const headers = {};
    propagation.inject(trace.setSpan(context.active(), span), headers);
    try {
      await consume(undiciRequest(url, { dispatcher: pools[i % PODS], headers }));
      span.setAttribute('http.response.status_code', 200);
    } finally {
      span.end();
    }
  },
  floor: () => consume(undiciRequest(meshUrl, { dispatcher: floor })),
  routing: () => consume(routing.request(meshUrl)),
  full: () => consume(full.request(meshUrl)),
  traced: () => consume(traced.request(meshUrl)),
  once: () => consume(once.request(meshUrl)),
  'once-traced': () => consume(onceTraced.request(meshUrl)),
};

async function runOne(name, n = REQUESTS) {
  const spans0 = exported.spans;
  // Once the SDK is registered, every run flushes the spans it queued before its clock stops.
  const result = await runLoad(variants[name], n, CONCURRENCY, provider ? () => provider.forceFlush() : undefined);
  return { ...result, spans: exported.spans - spans0 };
}

/** Registers the SDK as bench/telemetry-s9.mjs does (whole process, from now on). */
async function registerSdk() {
  const dropExporter = {
    export(spans, done) {
      exported.spans += spans.length;
      done({ code: 0 });
    },
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  provider = new TracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new BatchSpanProcessor({ exporter: dropExporter, maxQueueSize: 65_536 })] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  // The mesh looks at the registered providers at most once a second.
  await new Promise((r) => setTimeout(r, 1_100));
}

/** What each mesh variant runs with, read back from the mesh (so a wrong setup shows). */
function describe(name, mesh, retries) {
  const view = mesh.inspect();
  const cluster = view.clusters.find((c) => c.host.startsWith('reviews.') && c.subset === undefined);
  const policy = cluster?.policy;
  const od = policy?.outlierDetection;
  const table = view.routes.find((t) => t.host.startsWith('reviews.'));
  return (
    `${name}: balancer ${policy?.loadBalancer ?? '?'}, outlier detection ${od ? `on (consecutive5xxErrors ${od.consecutive5xxErrors}, interval ${od.intervalMs} ms)` : 'off'}, ` +
    `connection-pool limits ${policy?.limits ? 'on' : 'off'}, ${table?.routes.length ?? '?'} routes, retries ${retries}`
  );
}

const phases = {
  policy: {
    names: FLOOR ? ['raw', 'raw-lr', 'floor', 'routing', 'full'] : ['raw', 'raw-lr', 'routing', 'full'],
    setup: async () => {},
    report(rounds) {
      const cpu = (k) => medianOf(rounds, k, (r) => r.cpuUs).toFixed(1);
      console.log(`client CPU per request (median per variant, context): ${this.names.map((k) => `${k} ${cpu(k)} us`).join(', ')}`);
      console.log(
        pairedLine('client CPU added per request, routing only (routing - raw)', pairedDiff(rounds, 'routing', 'raw'), 'us', {
          target: { cmp: '<=', value: TARGET_ROUTING_US },
        }),
      );
      console.log(
        pairedLine('client CPU added per request, full policy (full - raw)', pairedDiff(rounds, 'full', 'raw'), 'us', {
          target: { cmp: '<=', value: TARGET_FULL_US },
        }),
      );
      console.log(pairedLine('  full policy over routing only (full - routing)', pairedDiff(rounds, 'full', 'routing'), 'us'));
      console.log(pairedLine("  LEAST_REQUEST's choice, raw (raw-lr - raw)", pairedDiff(rounds, 'raw-lr', 'raw'), 'us'));
      console.log(pairedLine('  full policy over a raw client choosing alike (full - raw-lr)', pairedDiff(rounds, 'full', 'raw-lr'), 'us'));
      // GC helper threads and V8's background compilers are left out: steadier under load.
      console.log(
        pairedLine(
          '  main thread only: routing - raw',
          pairedDiff(rounds, 'routing', 'raw', (r) => r.threadCpuUs),
          'us',
        ),
      );
      console.log(
        pairedLine(
          '  main thread only: full - raw',
          pairedDiff(rounds, 'full', 'raw', (r) => r.threadCpuUs),
          'us',
        ),
      );
      if (FLOOR) {
        console.log(pairedLine('  a bare dispatcher with the Host header (floor - raw)', pairedDiff(rounds, 'floor', 'raw'), 'us'));
        console.log(pairedLine('  routing only over the bare dispatcher (routing - floor)', pairedDiff(rounds, 'routing', 'floor'), 'us'));
      }
      console.log(pairedLine('throughput routing / raw', pairedRatio(rounds, 'routing', 'raw'), 'x', { sign: false }));
      console.log(pairedLine('throughput full / raw', pairedRatio(rounds, 'full', 'raw'), 'x', { sign: false }));
      gcLines(rounds, ['routing', 'full'], 'raw');
    },
  },
  tracing: {
    names: ['raw', 'raw-traced', 'full', 'traced', 'once', 'once-traced'],
    setup: registerSdk,
    report(rounds) {
      const cpu = (k) => medianOf(rounds, k, (r) => r.cpuUs).toFixed(1);
      const spansPerRequest = Math.min(...rounds.map((r) => r.traced.spans / r.traced.n));
      console.log(
        `client CPU per request (median per variant, context): full ${cpu('full')} us, traced ${cpu('traced')} us; spans exported per traced request: ${spansPerRequest.toFixed(2)} (fewest in a round)`,
      );
      console.log(
        pairedLine('throughput traced / untraced (full policy)', pairedRatio(rounds, 'traced', 'full'), 'x', {
          sign: false,
          target: { cmp: '>=', value: TARGET_TRACED_RATIO },
        }),
      );
      console.log(pairedLine('client CPU added per request by tracing (traced - full)', pairedDiff(rounds, 'traced', 'full'), 'us'));
      const onceSpans = Math.min(...rounds.map((r) => r['once-traced'].spans / r['once-traced'].n));
      console.log(
        pairedLine(`  one span per request (retries off), traced / untraced [${onceSpans.toFixed(2)} spans]`, pairedRatio(rounds, 'once-traced', 'once'), 'x', {
          sign: false,
        }),
      );
      console.log(pairedLine('  one span per request: CPU added (once-traced - once)', pairedDiff(rounds, 'once-traced', 'once'), 'us'));
      console.log(
        pairedLine('  the floor, a raw client with one span per request: raw-traced / raw', pairedRatio(rounds, 'raw-traced', 'raw'), 'x', { sign: false }),
      );
      console.log(pairedLine('  the floor: CPU added (raw-traced - raw)', pairedDiff(rounds, 'raw-traced', 'raw'), 'us'));
      // The mesh's one-span figure against the floor, round by round: what the mesh's own tracing
      // code costs beyond the SDK's span (1.00: nothing).
      const againstFloor = quartiles(rounds.map((r) => r['once-traced'].rps / r.once.rps / (r['raw-traced'].rps / r.raw.rps)));
      console.log(pairedLine('  one span per request against the floor: (once-traced / once) / (raw-traced / raw)', againstFloor, 'x', { sign: false }));
      const floor = pairedRatio(rounds, 'raw-traced', 'raw').median;
      if (floor < TARGET_TRACED_RATIO) {
        console.log(
          `  the floor is below the ${TARGET_TRACED_RATIO}x target on this machine: one span per request costs the SDK more than the target allows, whatever the client`,
        );
      }
      console.log(
        pairedLine(
          '  main thread only: traced - full',
          pairedDiff(rounds, 'traced', 'full', (r) => r.threadCpuUs),
          'us',
        ),
      );
      gcLines(rounds, ['traced'], 'full');
    },
  },
};

function gcLines(rounds, names, against) {
  for (const name of names) {
    console.log(
      pairedLine(
        `bytes allocated per request, ${name} - ${against}`,
        pairedDiff(rounds, name, against, (r) => r.bytes),
        'B',
        { digits: 0 },
      ),
    );
  }
  const bytes = (k) => medianOf(rounds, k, (r) => r.bytes).toFixed(0);
  // CPU on threads other than the main one: V8's GC helpers (concurrent marking, parallel
  // scavenges) and compilers. A variant far above the others is paying for the collector: that is
  // how V8's pretenuring of the mesh's per-request objects showed (docs/performance.md, "The garbage
  // collector after all"). GCProfiler's scavenge counts are not printed: it misses most of them.
  const otherThreads = (k) => medianOf(rounds, k, (r) => (r.threadCpuUs === undefined ? NaN : r.cpuUs - r.threadCpuUs)).toFixed(1);
  console.log(
    `  per variant (median): ${[against, ...names].map((k) => `${k} ${bytes(k)} B/request, ${otherThreads(k)} us/request on other threads`).join('; ')}`,
  );
}

/** What the profiles of this run were taken with; profile-summary.mjs reads it. */
const meta = {
  command: `${Object.entries(process.env)
    .filter(([k]) => ENV_KEYS.includes(k))
    .map(([k, v]) => `${k}=${v} `)
    .join('')}node ${process.execArgv.join(' ')} bench/overhead.mjs`.replace(/ +/g, ' '),
  machine: machineLine('bench/overhead'),
  concurrency: CONCURRENCY,
  variants: {},
};

/**
 * Profiles the variants (CPU, then heap sampling), PROFILE_CHUNKS chunks each, in alternating order
 * like the rounds, so that every variant's profile is taken under the same mix of machine load; the
 * profiler runs only around the chunks. Writes the profiles and meta.json.
 */
async function profile(names) {
  mkdirSync(PROFILE_DIR, { recursive: true });
  const session = new Session();
  session.connect();
  const chunk = Math.ceil(PROFILE_REQUESTS / PROFILE_CHUNKS);
  const kinds = [
    ...(PROFILE.includes('cpu')
      ? [
          {
            kind: 'cpu',
            start: async () => {
              await session.post('Profiler.enable');
              await session.post('Profiler.setSamplingInterval', { interval: 100 });
              await session.post('Profiler.start');
            },
            stop: async () => {
              const { profile: cpu } = await session.post('Profiler.stop');
              await session.post('Profiler.disable');
              return cpu;
            },
          },
        ]
      : []),
    ...(PROFILE.includes('heap')
      ? [
          {
            kind: 'heap',
            start: async () => {
              await session.post('HeapProfiler.enable');
              await session.post('HeapProfiler.startSampling', {
                samplingInterval: 1024,
                includeObjectsCollectedByMajorGC: true,
                includeObjectsCollectedByMinorGC: true,
              });
            },
            stop: async () => {
              const { profile: heap } = await session.post('HeapProfiler.stopSampling');
              await session.post('HeapProfiler.disable');
              return heap;
            },
          },
        ]
      : []),
  ];
  try {
    for (const name of names) meta.variants[name] = { name, requests: 0, cpu: [], heap: [], cpuUs: 0, threadCpuUs: 0, bytes: 0 };
    for (const { kind, start, stop } of kinds) {
      const totals = Object.fromEntries(names.map((n) => [n, { n: 0, cpuUs: 0, threadCpuUs: 0, bytes: 0 }]));
      for (let c = 0; c < PROFILE_CHUNKS; c++) {
        await waitQuiet(pids, { limit: 0.6 * OTHER_LIMIT, maxMs: 10_000 });
        for (const name of c % 2 === 0 ? names : [...names].reverse()) {
          await start();
          const run = await runOne(name, chunk);
          const data = await stop();
          const file = `${name}.${c}.${kind === 'cpu' ? 'cpuprofile' : 'heapprofile'}`;
          writeFileSync(resolve(PROFILE_DIR, file), JSON.stringify(data));
          meta.variants[name][kind].push(file);
          const t = totals[name];
          t.n += run.n;
          t.cpuUs += run.cpuUs * run.n;
          t.threadCpuUs += run.threadCpuUs * run.n;
          t.bytes += run.bytes * run.n;
        }
      }
      for (const name of names) {
        const t = totals[name];
        const entry = meta.variants[name];
        entry.requests = t.n;
        if (kind === 'cpu') {
          entry.cpuUs = t.cpuUs / t.n;
          entry.threadCpuUs = t.threadCpuUs / t.n;
        } else {
          entry.bytes = t.bytes / t.n;
        }
      }
      console.log(
        `  ${kind} profiles of ${names.join(', ')}: ${PROFILE_CHUNKS} chunks of ${chunk} requests each` +
          (kind === 'cpu' ? `; CPU per request under the profiler ${names.map((n) => `${n} ${meta.variants[n].cpuUs.toFixed(1)} us`).join(', ')}` : ''),
      );
    }
  } finally {
    session.disconnect();
  }
  writeFileSync(resolve(PROFILE_DIR, 'meta.json'), JSON.stringify(meta, null, 2));
}

console.log(
  `${REQUESTS} requests per run, two runs per variant and round, ${CONCURRENCY} in flight, ${PODS} pods, 1 KiB bodies, keep-alive; ` +
    `${ROUNDS} paired rounds per phase, other work limit ${OTHER_LIMIT} cores`,
);
console.log(describe('routing', routing, 'off (attempts: 0 on every route)'));
console.log(describe('full', full, "Istio's default (none written: 2 retries)"));
const profiled = [];
const saved = { machine: machineLine('bench/overhead'), requests: REQUESTS, concurrency: CONCURRENCY, phases: {} };
for (const phaseName of PHASES) {
  const phase = phases[phaseName];
  if (!phase) throw new Error(`unknown phase ${phaseName}; phases: ${Object.keys(phases).join(', ')}`);
  await phase.setup();
  console.log(`phase ${phaseName}: ${phase.names.join(', ')}`);
  await waitQuiet(pids);
  for (const name of phase.names) await runOne(name, WARMUP); // JIT, connections
  if (ROUNDS > 0) {
    const { rounds, discarded } = await pairedRounds({
      names: phase.names,
      runOne: (name) => runOne(name),
      prime: (name) => runOne(name, 200),
      rounds: ROUNDS,
      otherLimit: OTHER_LIMIT,
      pids,
      label: (r) => `${Math.round(r.rps)}/s ${r.cpuUs.toFixed(1)}us`,
    });
    console.log(
      `phase ${phaseName}: ${rounds.length} rounds kept` +
        (discarded ? `, ${discarded} thrown away (other work > ${OTHER_LIMIT} cores)` : '') +
        `; other work in kept rounds: median ${quartiles(rounds.map((r) => r.other)).median.toFixed(2)} cores`,
    );
    if (rounds.length > 0) phase.report(rounds);
    saved.phases[phaseName] = rounds.map((r) =>
      Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'object' ? { ...v, firstError: v.firstError?.message } : v])),
    );
  }
  if (PROFILE.length > 0) {
    const names = phase.names.filter((n) => !profiled.includes(n));
    await profile(names);
    profiled.push(...names);
  }
}
console.log(loadLine());
if (SAVE) writeFileSync(SAVE, JSON.stringify(saved, null, 1));
if (PROFILE.length > 0) {
  console.log(`\nprofiles in ${PROFILE_DIR}; summary (node bench/lib/profile-summary.mjs ${PROFILE_DIR}):\n`);
  printSummary(PROFILE_DIR);
}

await routing.close();
await full.close();
await traced?.close();
await once?.close();
await onceTraced?.close();
await Promise.all(pools.map((p) => p.close()));
await provider?.shutdown();
await pods.stop();
