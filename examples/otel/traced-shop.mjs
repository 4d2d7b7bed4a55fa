// OpenTelemetry with the mesh: the application owns the SDK (here @opentelemetry/sdk-node), the
// mesh only uses what is registered. Traces: one CLIENT span per attempt, children of the
// caller's span, with the mesh's sidecarless.* attributes. Metrics: Istio's standard metrics on a
// Prometheus endpoint, as a sidecar would expose them.
//
//   npm run build && node examples/otel/traced-shop.mjs               (the mesh's own spans)
//   npm run build && node examples/otel/traced-shop.mjs --with-undici (instrumentation-undici's
//                                                                       spans, enriched by the mesh)
// Env: METRICS_PORT (default 9464; 0 picks a free one).
import { createServer } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { trace } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace';
import { createMesh } from '../../dist/index.js';
import { startShopPods } from '../shop/pods.mjs';

const withUndici = process.argv.includes('--with-undici');
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

// 1. The SDK, started before the mesh is created. A real application exports spans with OTLP
//    (@opentelemetry/exporter-trace-otlp-http); the example keeps them in memory to print them.
const spans = new InMemorySpanExporter();
const prometheus = new PrometheusExporter({ preventServerStart: true });
const sdk = new NodeSDK({
  serviceName: 'productpage',
  spanProcessors: [new BatchSpanProcessor({ exporter: spans })],
  metricReaders: [prometheus],
  instrumentations: withUndici ? [new UndiciInstrumentation()] : [],
});
sdk.start();

// 2. The metrics endpoint Prometheus scrapes (`/metrics`).
const metricsServer = createServer((req, res) => prometheus.getMetricsRequestHandler(req, res));
await new Promise((done) => metricsServer.listen(Number(process.env.METRICS_PORT ?? 9464), '127.0.0.1', done));
const metricsUrl = `http://127.0.0.1:${metricsServer.address().port}/metrics`;

// 3. The mesh, with Istio's metrics turned on and this workload's identity for their labels.
const pods = await startShopPods(9080);
const mesh = await createMesh({
  namespace: 'shop',
  config: [resolve(root, 'examples/shop/mesh')],
  labels: { app: 'productpage', version: 'v1' },
  watch: false,
  telemetry: { istioMetrics: true, workload: { name: 'productpage-v1' } },
});

try {
  const tracer = trace.getTracer('shop-example');
  // The application's own span (an inbound request, say); the mesh's spans are its children.
  await tracer.startActiveSpan('GET /productpage', async (span) => {
    for (let i = 0; i < 10; i++) await (await mesh.fetch('http://reviews:9080/reviews/1')).arrayBuffer();
    for (let i = 0; i < 10; i++) await (await mesh.fetch('http://ratings:9080/ratings/1', { headers: { 'end-user': 'jason' } })).arrayBuffer();
    span.end();
  });
  // NodeSDK registered its provider globally: flush the batch before reading the exporter.
  await trace.getTracerProvider().getDelegate().forceFlush();

  const finished = spans.getFinishedSpans().filter((s) => s.kind === 2);
  console.log(`== ${finished.length} client spans (${withUndici ? 'instrumentation-undici, enriched' : "the mesh's own"}); the first three:`);
  for (const s of finished.slice(0, 3)) {
    const mesh = Object.entries(s.attributes)
      .filter(([k]) => k.startsWith('sidecarless.'))
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    console.log(
      `   ${s.name} ${s.attributes['url.full']} -> ${s.attributes['http.response.status_code'] ?? '-'} peer ${s.attributes['network.peer.address'] ?? '-'} [${s.instrumentationScope.name}] ${mesh}`,
    );
  }
  const local = finished.filter((s) => s.attributes['sidecarless.local_reply'] !== undefined);
  console.log(`== ${local.length} requests answered by the mesh itself (fault abort), each with its span`);

  const text = await (await globalThis.fetch(metricsUrl)).text();
  console.log(`== ${metricsUrl}: istio_requests_total`);
  for (const line of text.split('\n')) {
    if (!line.startsWith('istio_requests_total{')) continue;
    const code = /response_code="(\d+)"/.exec(line)?.[1];
    const flags = /response_flags="([^"]*)"/.exec(line)?.[1];
    const service = /destination_service_name="([^"]*)"/.exec(line)?.[1];
    const version = /destination_version="([^"]*)"/.exec(line)?.[1];
    console.log(`   ${service} ${version} response_code=${code} response_flags=${flags} -> ${line.split(' ').at(-1)}`);
  }
} finally {
  await mesh.close();
  await pods.close();
  metricsServer.close();
  await sdk.shutdown();
}
