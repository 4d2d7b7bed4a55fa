// bench/telemetry-s9 (S9): what tracing costs. Requests per second with 1 KiB bodies over
// keep-alive connections, a fixed number of requests at a fixed concurrency, for:
//   mesh.request, telemetry off          vs  mesh.request, tracing every request (100% sampling,
//                                             BatchSpanProcessor, an exporter that drops batches)
//   undici.request to the pods           vs  the same with @opentelemetry/instrumentation-undici
// The SDK (sdk-trace, always-on sampler) is registered for the whole process; the mesh's spans are
// its own (`tracing: 'own'`), the undici instrumentation is enabled only while its variant runs
// (it subscribes to undici's diagnostics channels, which every variant would otherwise pay for).
// No MeterProvider is registered: this measures tracing, on both sides.
// Variants alternate in a rotating order, ROUNDS times; ratios are taken within each round and
// the median round's ratio is the figure. Rounds with other work on the machine are thrown away.
// Targets (issue 6): mesh + tracing >= 0.90x the mesh without telemetry, and the mesh's tracing
// costs no more than instrumentation-undici costs raw undici (ratio of ratios >= 1).
// Run: npm run bench:s9   (builds first)
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { AlwaysOnSampler, BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { Agent, request as undiciRequest } from 'undici';
import { createMesh } from '../dist/index.js';
import { cpuMeter, info, loadLine, machineLine, median, onExit, podAddresses, row, startPods, waitQuiet, watchdog } from './lib/common.mjs';
import { serviceResources } from './lib/mesh-config.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
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
const provider = new TracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new BatchSpanProcessor({ exporter: dropExporter, maxQueueSize: 65_536 })] });
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
const meter = cpuMeter(ourPids);

async function run(name, n) {
  const { call, before, after } = variants[name];
  let next = 0;
  let errors = 0;
  let firstError;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        await call(i);
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  };
  before?.();
  meter.lap();
  const spans0 = dropExporter.spans;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // Spans still in the batch processor's queue are exported on the clock: their cost is tracing's.
  await provider.forceFlush();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const other = meter.lap().other;
  after?.();
  if (errors > 0) console.log(`  ${name}: ${errors} errors (${firstError?.message})`);
  return { rps: (n / ms) * 1000, cpuUs: (cpu.user + cpu.system) / n, other: Number.isFinite(other) ? other : 0, spans: dropExporter.spans - spans0 };
}

await waitQuiet(ourPids);
for (const name of names) await run(name, Math.min(REQUESTS, 5_000)); // warm-up: JIT, connections

const rounds = [];
let discarded = 0;
for (let attempt = 0; rounds.length < ROUNDS && attempt < 3 * ROUNDS; attempt++) {
  await waitQuiet(ourPids);
  const order = names.map((_, i) => names[(i + attempt) % names.length]);
  const round = {};
  for (const name of order) round[name] = await run(name, REQUESTS);
  const other = Math.max(...names.map((k) => round[k].other));
  const line = `${names.map((k) => `${k} ${Math.round(round[k].rps)}`).join(', ')}; other work up to ${other.toFixed(2)} cores`;
  if (other > OTHER_LIMIT) {
    discarded++;
    console.log(`  round thrown away (other work): ${line}`);
    continue;
  }
  rounds.push(round);
  console.log(`  round ${rounds.length}: ${line}`);
}

const ratio = (a, b) => median(rounds.map((r) => r[a].rps / r[b].rps));
console.log(`${REQUESTS} requests per run, ${CONCURRENCY} in flight, ${PODS} pods, 1 KiB bodies; median of ${rounds.length} rounds` +
  (discarded ? ` (${discarded} more thrown away: other work on the machine)` : ''));
for (const name of names) {
  const spans = Math.max(...rounds.map((r) => r[name].spans));
  console.log(info(`${name} (client CPU ${median(rounds.map((r) => r[name].cpuUs)).toFixed(1)} us/req, ${spans} spans)`, median(rounds.map((r) => r[name].rps)), 'req/s', 0));
}
// Client CPU per request is steadier than throughput on a shared machine: what tracing adds.
const added = (a, b) => median(rounds.map((r) => r[a].cpuUs - r[b].cpuUs));
const oursUs = added('mesh.request + tracing', 'mesh.request');
const theirsUs = added('undici.request + instrumentation-undici', 'undici.request');
console.log(info('client CPU added per request: mesh tracing', oursUs, 'us', 1));
console.log(info('client CPU added per request: instrumentation-undici', theirsUs, 'us', 1));
console.log(info('CPU added: mesh tracing - instrumentation-undici', oursUs - theirsUs, 'us', 1));
const ours = ratio('mesh.request + tracing', 'mesh.request');
const theirs = ratio('undici.request + instrumentation-undici', 'undici.request');
console.log(row('mesh.request + tracing / mesh.request', ours, 'x', '>=', 0.9));
console.log(info('undici.request + instrumentation-undici / undici.request', theirs, 'x'));
console.log(row('the two ratios: ours / instrumentation-undici\'s', median(rounds.map((r) =>
  (r['mesh.request + tracing'].rps / r['mesh.request'].rps) / (r['undici.request + instrumentation-undici'].rps / r['undici.request'].rps))), 'x', '>=', 1.0));
console.log(loadLine());

await plain.close();
await traced.close();
await rawPlain.close();
await rawTraced.close();
await provider.shutdown();
await pods.stop();
