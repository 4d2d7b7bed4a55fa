// bench/telemetry-s9 (S9): what tracing costs. Requests per second with 1 KiB bodies over
// keep-alive connections, a fixed number of requests at a fixed concurrency, for:
//   mesh.request, telemetry off          vs  mesh.request, tracing every request (100% sampling,
//                                             BatchSpanProcessor, an exporter that drops batches)
//   undici.request to the pods           vs  the same with @opentelemetry/instrumentation-undici
// The SDK (sdk-trace, always-on sampler) is registered for the whole process; the mesh's spans are
// its own (`tracing: 'own'`), the undici instrumentation is enabled only while its variant runs
// (it subscribes to undici's diagnostics channels, which every variant would otherwise pay for).
// No MeterProvider is registered: this measures tracing, on both sides.
// Paired rounds (bench/lib/paired.mjs, shared with bench/overhead.mjs and bench/throughput.mjs):
// each round runs every variant twice, REQUESTS/2 requests per run, forward then backward; ratios
// and CPU differences are taken within each round and the figure is the median of the per-round
// figures, with its interquartile range. Rounds with other work on the machine are thrown away.
// Targets (issue 6): mesh + tracing >= 0.90x the mesh without telemetry, and the mesh's tracing
// costs no more than instrumentation-undici costs raw undici (ratio of ratios >= 1).
// Run: npm run bench:s9   (builds first)
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { Agent, request as undiciRequest } from 'undici';
import { createMesh } from '../dist/index.js';
import { loadLine, machineLine, onExit, podAddresses, startPods, waitQuiet, watchdog } from './lib/common.mjs';
import { serviceResources } from './lib/mesh-config.mjs';
import { medianOf, pairedDiff, pairedLine, pairedRatio, pairedRounds, quartiles, runLoad } from './lib/paired.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const PODS = Number(process.env.PODS ?? 4);
const OTHER_LIMIT = Number(process.env.OTHER_LIMIT ?? 0.25);
watchdog(1_200_000, 'bench/telemetry-s9');
console.log(machineLine('bench/telemetry-s9 (S9)'));

/** Takes every batch and drops it: the cost measured is the SDK's and ours, not an exporter's. */
const dropExporter = {
  spans: 0,
  export(spans, done) {
    this.spans += spans.length;
    done({ code: 0 });
  },
  shutdown: () => Promise.resolve(),
  forceFlush: () => Promise.resolve(),
};
const provider = new TracerProvider({
  sampler: new AlwaysOnSampler(),
  spanProcessors: [new BatchSpanProcessor({ exporter: dropExporter, maxQueueSize: 65_536 })],
});
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(provider);
const instrumentation = new UndiciInstrumentation();
instrumentation.setTracerProvider(provider);
instrumentation.disable();

const addresses = podAddresses(PODS);
const pods = await startPods({ addresses, bodySize: 1024 });
onExit(() => process.kill(pods.pid));
const ourPids = () => [process.pid, pods.pid];

const config = serviceResources({ port: pods.port, addresses });
const plain = await createMesh({ namespace: 'shop', watch: false, config, telemetry: false });
const traced = await createMesh({ namespace: 'shop', watch: false, config, telemetry: { tracing: 'own', metrics: false } });
const rawPlain = new Agent({ keepAliveTimeout: 4_000 });
const rawTraced = new Agent({ keepAliveTimeout: 4_000 });
const rawUrls = addresses.map((a) => `http://${a}:${pods.port}/reviews/1`);
const meshUrl = `http://reviews:${pods.port}/reviews/1`;

async function viaRequest(promise) {
  const res = await promise;
  const body = await res.body.arrayBuffer();
  if (res.statusCode !== 200 || body.byteLength !== 1024) throw new Error(`status ${res.statusCode}, ${body.byteLength} bytes`);
}

const variants = {
  'mesh.request': { call: () => viaRequest(plain.request(meshUrl)) },
  'mesh.request + tracing': { call: () => viaRequest(traced.request(meshUrl)) },
  'undici.request': { call: (i) => viaRequest(undiciRequest(rawUrls[i % PODS], { dispatcher: rawPlain })) },
  'undici.request + instrumentation-undici': {
    call: (i) => viaRequest(undiciRequest(rawUrls[i % PODS], { dispatcher: rawTraced })),
    before: () => instrumentation.enable(),
    after: () => instrumentation.disable(),
  },
};
const names = Object.keys(variants);

async function run(name, n) {
  const { call, before, after } = variants[name];
  before?.();
  const spans0 = dropExporter.spans;
  // Spans still in the batch processor's queue are exported on the clock: their cost is tracing's.
  const result = await runLoad(call, n, CONCURRENCY, () => provider.forceFlush());
  after?.();
  return { ...result, spans: dropExporter.spans - spans0 };
}

await waitQuiet(ourPids);
for (const name of names) await run(name, Math.min(REQUESTS, 5_000)); // warm-up: JIT, connections

const { rounds, discarded } = await pairedRounds({
  names,
  runOne: (name) => run(name, Math.round(REQUESTS / 2)),
  prime: (name) => run(name, 200),
  rounds: ROUNDS,
  otherLimit: OTHER_LIMIT,
  pids: ourPids,
  quietMs: 20_000,
});

console.log(
  `${REQUESTS} requests per variant and round (two runs), ${CONCURRENCY} in flight, ${PODS} pods, 1 KiB bodies; ${rounds.length} paired rounds` +
    (discarded ? ` (${discarded} more thrown away: other work on the machine)` : ''),
);
for (const name of names) {
  const spans = Math.max(...rounds.map((r) => r[name].spans));
  console.log(
    `${`${name} (client CPU ${medianOf(rounds, name, (r) => r.cpuUs).toFixed(1)} us/req, ${spans} spans)`.padEnd(72)} ${medianOf(rounds, name, (r) => r.rps)
      .toFixed(0)
      .padStart(8)} req/s`,
  );
}
// Client CPU per request is steadier than throughput on a shared machine: what tracing adds.
console.log(pairedLine('client CPU added per request: mesh tracing', pairedDiff(rounds, 'mesh.request + tracing', 'mesh.request'), 'us'));
console.log(
  pairedLine('client CPU added per request: instrumentation-undici', pairedDiff(rounds, 'undici.request + instrumentation-undici', 'undici.request'), 'us'),
);
console.log(
  pairedLine(
    'CPU added: mesh tracing - instrumentation-undici',
    quartiles(
      rounds.map(
        (r) => r['mesh.request + tracing'].cpuUs - r['mesh.request'].cpuUs - (r['undici.request + instrumentation-undici'].cpuUs - r['undici.request'].cpuUs),
      ),
    ),
    'us',
  ),
);
console.log(pairedLine('client CPU per request: mesh.request - undici.request', pairedDiff(rounds, 'mesh.request', 'undici.request'), 'us'));
console.log(
  pairedLine('mesh.request + tracing / mesh.request', pairedRatio(rounds, 'mesh.request + tracing', 'mesh.request'), 'x', {
    sign: false,
    target: { cmp: '>=', value: 0.9 },
  }),
);
console.log(
  pairedLine(
    'undici.request + instrumentation-undici / undici.request',
    pairedRatio(rounds, 'undici.request + instrumentation-undici', 'undici.request'),
    'x',
    { sign: false },
  ),
);
console.log(
  pairedLine(
    "the two ratios: ours / instrumentation-undici's",
    quartiles(
      rounds.map((r) => r['mesh.request + tracing'].rps / r['mesh.request'].rps / (r['undici.request + instrumentation-undici'].rps / r['undici.request'].rps)),
    ),
    'x',
    { sign: false, target: { cmp: '>=', value: 1.0 } },
  ),
);
console.log(loadLine());

await plain.close();
await traced.close();
await rawPlain.close();
await rawTraced.close();
await provider.shutdown();
await pods.stop();
