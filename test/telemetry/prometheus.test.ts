import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { Pods } from '../helpers/pods.js';
import { Prometheus } from '../helpers/prometheus.js';
import { meshOf, reviews } from './fixtures.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('prometheus');

/**
 * End to end: the mesh's Istio metrics, exposed by the OpenTelemetry Prometheus exporter, scraped
 * by a real Prometheus server, and read back with PromQL as Istio's dashboards read them.
 */
let pods: Pods;
let mesh: Mesh;
let exporter: PrometheusExporter;
let provider: MeterProvider;
let endpoint: Server;
let prometheus: Prometheus;

beforeAll(async () => {
  exporter = new PrometheusExporter({ preventServerStart: true });
  provider = new MeterProvider({ readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  endpoint = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  const http = `  - match: [{ uri: { prefix: /broken } }]
    fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } }
    route: [{ destination: { host: reviews } }]
  - route: [{ destination: { host: reviews } }]`;
  mesh = await meshOf(reviews(pods.port, http), {
    labels: { app: 'productpage', version: 'v1' },
    telemetry: { istioMetrics: true, workload: { name: 'productpage-v1' } },
  });
  prometheus = await Prometheus.start(`127.0.0.1:${(endpoint.address() as AddressInfo).port}`);
}, 90_000);

afterAll(async () => {
  await prometheus?.stop();
  await mesh?.close();
  await pods?.close();
  await new Promise((resolve) => endpoint?.close(resolve));
  await provider?.shutdown();
  metrics.disable();
});

describe('Prometheus scrapes the mesh (istio_* metrics)', () => {
  it('a PromQL query returns the counts the test sent', async () => {
    for (let i = 0; i < 7; i++) {
      const res = await mesh.request(`http://reviews:${pods.port}/ok`);
      await res.body.dump();
      expect(res.statusCode).toBe(200);
    }
    for (let i = 0; i < 3; i++) {
      const res = await mesh.request(`http://reviews:${pods.port}/broken`);
      await res.body.dump();
      expect(res.statusCode).toBe(503);
    }
    const count = async (promql: string): Promise<number> => (await prometheus.query(promql)).reduce((n, s) => n + s.value, 0);
    const ok = 'sum(istio_requests_total{reporter="source",source_workload="productpage-v1",destination_service_name="reviews",response_code="200"})';
    const faulted = 'sum(istio_requests_total{destination_service="reviews.shop.svc.cluster.local",response_code="503",response_flags="FI"})';
    await prometheus.pollUntil(async () => (await count(ok)) === 7 && (await count(faulted)) === 3, 'istio_requests_total scraped');
    expect(await count(ok)).toBe(7);
    expect(await count(faulted)).toBe(3);
    // Istio's dashboards read the duration histogram by its buckets.
    expect(await count('sum(istio_request_duration_milliseconds_count{response_code="200"})')).toBe(7);
    expect(await count('sum(istio_request_duration_milliseconds_bucket{response_code="200",le="+Inf"})')).toBe(7);
  }, 90_000);
});
