import express from 'express';
import Fastify from 'fastify';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh, remainingTimeMs } from '../../src/index.js';
import { meshMiddleware } from '../../src/server/express.js';
import { meshPlugin, meshRewriteUrl } from '../../src/server/fastify.js';
import { withMesh } from '../../src/server/http.js';
import type { Integration } from '../helpers/inbound-apps.js';
import { call, INTEGRATIONS } from '../helpers/inbound-apps.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';
import { reviewsServiceEntry, docs } from '../helpers/mesh-from-yaml.js';

let mesh: Mesh | undefined;
let server: Server | undefined;
let closeApp: (() => Promise<void>) | undefined;
let pods: Pods | undefined;
let otel: OtelHarness | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await closeApp?.().catch(() => undefined);
  await mesh?.close();
  await pods?.close();
  await otel?.shutdown();
  mesh = undefined;
  server = undefined;
  closeApp = undefined;
  pods = undefined;
  otel = undefined;
});

/** The handler: calls the reviews "pod" through the mesh and reports what it knew while handling. */
async function handle(m: Mesh, port: number): Promise<{ remaining: number | undefined; upstreamTraceparent: string | undefined }> {
  const remaining = remainingTimeMs();
  const res = await m.request(`http://reviews.shop.svc.cluster.local:${port}/reviews/1`);
  const reply = (await res.body.json()) as { headers: Record<string, string | undefined> };
  return { remaining, upstreamTraceparent: reply.headers.traceparent };
}

async function start(integration: Integration, timeoutMs?: number): Promise<number> {
  pods = await Pods.start(['127.0.0.2']);
  const m = await createMesh({
    namespace: 'shop',
    labels: { app: 'ratings' },
    certificates: false,
    dns: false,
    watch: false,
    telemetry: { istioMetrics: true, workload: { name: 'ratings-v1' } },
    ...(timeoutMs !== undefined ? { inbound: { timeoutMs } } : {}),
    config: docs(reviewsServiceEntry(pods.port, ['127.0.0.2'])),
  });
  mesh = m;
  const podPort = pods.port;
  const reply = (res: { setHeader(n: string, v: string): unknown; end(b: string): unknown }, body: unknown): void => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  };
  if (integration === 'express') {
    const app = express();
    app.use(meshMiddleware(m));
    app.use((req, res) => void handle(m, podPort).then((b) => reply(res, b)));
    server = m.createServer(app);
  } else if (integration === 'fastify') {
    let made: Server | undefined;
    const app = Fastify({ rewriteUrl: meshRewriteUrl(m), serverFactory: (h) => (made = m.createServer(h)) });
    await app.register(meshPlugin, { mesh: m });
    app.get('/*', async () => handle(m, podPort));
    await app.ready();
    server = made!;
    closeApp = () => app.close();
  } else {
    server = m.createServer(withMesh(m, (req, res) => void handle(m, podPort).then((b) => reply(res, b))));
  }
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe.each(INTEGRATIONS)('the request context through %s', (integration) => {
  it("a server span continues the caller's trace; outbound calls are its children and inherit the deadline", async () => {
    otel = new OtelHarness();
    const port = await start(integration);
    const r = await call(port, '/ratings/1', { headers: { traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`, 'x-envoy-expected-rq-timeout-ms': '1500' } });
    expect(r.status).toBe(200);
    const body = JSON.parse(r.body) as { remaining: number; upstreamTraceparent: string };
    expect(body.remaining).toBeGreaterThan(0);
    expect(body.remaining).toBeLessThanOrEqual(1500);
    await vi.waitFor(() => expect(otel!.spans().some((s) => s.kind === 1)).toBe(true));
    const spans = otel.spans();
    const serverSpan = spans.find((s) => s.kind === 1)!;
    expect(serverSpan.spanContext().traceId).toBe(TRACE_ID);
    expect(serverSpan.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(serverSpan.attributes).toMatchObject({ 'http.request.method': 'GET', 'url.path': '/ratings/1', 'http.response.status_code': 200 });
    // The upstream saw the same trace, under a span of this request.
    expect(body.upstreamTraceparent.split('-')[1]).toBe(TRACE_ID);
    const children = spans.filter((s) => s.spanContext().traceId === TRACE_ID && s !== serverSpan);
    expect(children.length).toBeGreaterThan(0);
  });
});

describe('the request context', () => {
  it('grpc-timeout sets the deadline; without a header the configured inbound.timeoutMs does; without either there is none', async () => {
    const port = await start('http', 900);
    const grpc = JSON.parse((await call(port, '/', { headers: { 'grpc-timeout': '200m' } })).body) as { remaining: number };
    expect(grpc.remaining).toBeGreaterThan(0);
    expect(grpc.remaining).toBeLessThanOrEqual(200);
    const configured = JSON.parse((await call(port, '/')).body) as { remaining: number };
    expect(configured.remaining).toBeGreaterThan(200);
    expect(configured.remaining).toBeLessThanOrEqual(900);
    await mesh!.close();
    server!.closeAllConnections();
    await new Promise<void>((resolve) => server!.close(() => resolve()));
    await pods!.close();
    const plain = await start('http');
    expect(JSON.parse((await call(plain, '/')).body)).not.toHaveProperty('remaining');
  });

  it('http.server.request.duration and Istio metrics with reporter="destination"', async () => {
    otel = new OtelHarness({ tracing: false });
    const port = await start('express');
    expect((await call(port, '/x')).status).toBe(200);
    await vi.waitFor(async () => expect(await otel!.metric('http.server.request.duration')).toHaveLength(1));
    const duration = await otel.metric('http.server.request.duration');
    expect(duration.map((p) => [p.attributes['http.request.method'], p.attributes['http.response.status_code'], (p.value as { count: number }).count])).toEqual(
      [['GET', 200, 1]],
    );
    const istio = await otel.metric('istio_requests_total');
    const inbound = istio.find((p) => p.attributes.reporter === 'destination')!;
    expect(inbound.attributes).toMatchObject({
      reporter: 'destination',
      destination_workload: 'ratings-v1',
      destination_app: 'ratings',
      destination_service_namespace: 'shop',
      source_principal: 'unknown',
      connection_security_policy: 'none',
      response_code: '200',
      response_flags: '-',
    });
  });
});
