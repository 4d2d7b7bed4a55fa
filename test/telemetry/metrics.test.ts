import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { TestClock } from '../helpers/test-clock.js';
import { meshOf, reviews } from './fixtures.js';

/** Metric values read through a real MeterProvider and an in-memory reader. */
let pods: Pods;
let log: RequestLog;
let otel: OtelHarness;
let mesh: Mesh | undefined;

beforeAll(async () => {
  otel = new OtelHarness({ tracing: false });
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  log = new RequestLog(pods);
});
afterEach(async () => {
  log.take = undefined;
  log.clear();
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
  await otel.shutdown();
});

const HTTP = `  - name: broken
    match: [{ uri: { prefix: /broken } }]
    fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } }
    route: [{ destination: { host: reviews } }]
  - name: primary
    route: [{ destination: { host: reviews } }]
    retries: { attempts: 2, retryOn: 5xx }`;

function sum(points: DataPoint<number | Histogram>[], test: (a: Record<string, unknown>) => boolean): number {
  let n = 0;
  for (const p of points) if (test(p.attributes)) n += typeof p.value === 'number' ? p.value : p.value.count;
  return n;
}

/** One request: the status the caller saw and the bytes of the body it read. */
async function get(path: string): Promise<{ status: number; bytes: number }> {
  const res = await mesh!.request(`http://reviews:${pods.port}${path}`);
  const body = await res.body.arrayBuffer();
  return { status: res.statusCode, bytes: body.byteLength };
}

describe('metrics', () => {
  it('Istio standard metrics with Istio names and labels, plus http.client.request.duration per attempt', async () => {
    mesh = await meshOf(reviews(pods.port, HTTP), {
      labels: { app: 'productpage', version: 'v1' },
      telemetry: { istioMetrics: true, workload: { name: 'productpage-v1' } },
    });
    let first = true;
    log.take = (s) => {
      if (!first) return false;
      first = false;
      s.res.writeHead(503).end('busy');
      return true;
    };
    let bytes = 0;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = await get('/ok');
      statuses.push(reply.status);
      bytes += reply.bytes;
    }
    statuses.push((await get('/broken')).status);
    // The pod's one 503 was retried (retryOn: 5xx) and the caller never saw it; the fault abort is
    // answered by the mesh itself.
    expect(statuses).toEqual([200, 200, 200, 503]);

    const requests = await otel.metric('istio_requests_total');
    expect(sum(requests, (a) => a.response_code === '200' && a.response_flags === '-')).toBe(3);
    expect(sum(requests, (a) => a.response_code === '503' && a.response_flags === 'FI')).toBe(1);
    const ok = requests.find((p) => p.attributes.response_code === '200')!.attributes;
    expect(ok).toEqual({
      reporter: 'source',
      source_workload: 'productpage-v1',
      source_workload_namespace: 'shop',
      source_principal: 'unknown',
      source_app: 'productpage',
      source_version: 'v1',
      destination_service: 'reviews.shop.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'shop',
      destination_workload: 'unknown',
      destination_workload_namespace: 'unknown',
      destination_app: 'reviews',
      destination_version: 'v1',
      destination_principal: 'unknown',
      destination_cluster: 'unknown',
      request_protocol: 'http',
      response_code: '200',
      response_flags: '-',
      connection_security_policy: 'unknown',
      grpc_response_status: '',
    });
    expect(sum(await otel.metric('istio_request_duration_milliseconds'), () => true)).toBe(4);
    const responseBytes = await otel.metric('istio_response_bytes');
    const okBytes = responseBytes.filter((p) => p.attributes.response_code === '200').reduce((n, p) => n + (p.value as Histogram).sum!, 0);
    expect(okBytes).toBe(bytes);

    // Four attempts went out: the 503, its retry, two more; the fault abort sent none.
    const duration = await otel.metric('http.client.request.duration');
    expect(sum(duration, () => true)).toBe(4);
    expect(sum(duration, (a) => a['http.response.status_code'] === 503 && a['error.type'] === '503')).toBe(1);
    expect(sum(duration, (a) => a['http.request.method'] === 'GET' && a['server.address'] === 'reviews' && a['server.port'] === pods.port)).toBe(4);

    expect(sum(await otel.metric('sidecarless.retries'), (a) => a['sidecarless.destination.host'] === 'reviews.shop.svc.cluster.local')).toBe(1);
  });

  it('mesh health: endpoints by state, overflowed requests, configuration snapshots', async () => {
    const before = sum(await otel.metric('sidecarless.config.snapshots'), (a) => a['sidecarless.config.outcome'] === 'accepted');
    const limited = reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 0 }').replace(
      'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }',
      'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN }, connectionPool: { http: { http1MaxPendingRequests: 1, http2MaxRequests: 1 } } }',
    );
    mesh = await meshOf(limited, { telemetry: { istioMetrics: true } });
    expect(sum(await otel.metric('sidecarless.config.snapshots'), (a) => a['sidecarless.config.outcome'] === 'accepted')).toBe(before + 1);

    log.take = () => true; // hold the first request: the second overflows
    const held = mesh.request(`http://reviews:${pods.port}/`);
    await log.until(() => log.seen.length === 1);
    const res = await mesh.request(`http://reviews:${pods.port}/`);
    await res.body.dump();
    expect(res.statusCode).toBe(503);
    expect(res.headers['x-envoy-overloaded']).toBe('true');
    log.seen[0]!.res.end('late');
    await (await held).body.dump();

    expect(sum(await otel.metric('sidecarless.overflows'), () => true)).toBe(1);
    expect(sum(await otel.metric('istio_requests_total'), (a) => a.response_code === '503' && a.response_flags === 'UO')).toBe(1);
    const endpoints = await otel.metric('sidecarless.endpoints');
    const cluster = `reviews.shop.svc.cluster.local||${pods.port}`;
    expect(sum(endpoints, (a) => a['sidecarless.cluster'] === cluster && a['sidecarless.endpoint.state'] === 'healthy')).toBe(2);
    expect(sum(endpoints, (a) => a['sidecarless.cluster'] === cluster && a['sidecarless.endpoint.state'] === 'ejected')).toBe(0);
  });

  it('ejections: the counter and the ejected state of the endpoints gauge follow outlier detection', async () => {
    const yaml = reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 0 }').replace(
      'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }',
      'trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN }, outlierDetection: { consecutive5xxErrors: 1, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 } }',
    );
    mesh = await meshOf(yaml, { clock: new TestClock() });
    const ejected: string[] = [];
    mesh.on('ejection', (e) => ejected.push(e.endpoint));
    log.take = (s) => {
      if (s.pod !== '127.0.0.2') return false;
      s.res.writeHead(500).end('broken');
      return true;
    };
    const statuses: number[] = [];
    for (let i = 0; i < 4 && ejected.length === 0; i++) statuses.push((await get('/')).status);
    expect(ejected).toEqual([`127.0.0.2:${pods.port}`]);
    // No retries: the caller saw 127.0.0.2's one 500, the request that ejected it, and 200s before.
    expect(statuses.at(-1)).toBe(500);
    expect(statuses.slice(0, -1).every((s) => s === 200)).toBe(true);
    const cluster = `reviews.shop.svc.cluster.local||${pods.port}`;
    expect(
      sum(await otel.metric('sidecarless.ejections'), (a) => a['sidecarless.cluster'] === cluster && a['sidecarless.ejection.reason'] === 'consecutive-5xx'),
    ).toBe(1);
    const endpoints = await otel.metric('sidecarless.endpoints');
    expect(sum(endpoints, (a) => a['sidecarless.cluster'] === cluster && a['sidecarless.endpoint.state'] === 'ejected')).toBe(1);
    expect(sum(endpoints, (a) => a['sidecarless.cluster'] === cluster && a['sidecarless.endpoint.state'] === 'healthy')).toBe(1);
  });

  it('a rate-limited request: counted, flagged RL in istio_requests_total', async () => {
    const limit = `
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews-limits, namespace: shop }
spec:
  host: reviews
  limits:
  - name: tiny
    tokenBucket: { maxTokens: 1, tokensPerFill: 1, fillInterval: 1h }`;
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]', { extra: limit }), { telemetry: { istioMetrics: true } });
    const before = sum(await otel.metric('sidecarless.rate_limited'), () => true);
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await mesh.fetch(`http://reviews:${pods.port}/`);
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    expect(statuses).toEqual([200, 429, 429]);
    expect(sum(await otel.metric('sidecarless.rate_limited'), () => true) - before).toBe(2);
    expect(sum(await otel.metric('istio_requests_total'), (a) => a.response_code === '429' && a.response_flags === 'RL')).toBe(2);
  });
});
