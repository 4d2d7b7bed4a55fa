import { context, SpanKind, trace } from '@opentelemetry/api';
import { UndiciInstrumentation } from '@opentelemetry/instrumentation-undici';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { meshOf, reviews } from './fixtures.js';

/**
 * With @opentelemetry/instrumentation-undici active the mesh must not double-instrument: exactly
 * one client span and one `traceparent` per attempt, the instrumentation's, carrying the mesh's
 * attributes.
 */
let pods: Pods;
let log: RequestLog;
let otel: OtelHarness;
let instrumentation: UndiciInstrumentation;
let mesh: Mesh | undefined;

beforeAll(async () => {
  otel = new OtelHarness();
  instrumentation = new UndiciInstrumentation();
  instrumentation.setTracerProvider(otel.tracerProvider);
  instrumentation.setMeterProvider(otel.meterProvider);
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  log = new RequestLog(pods);
});
afterEach(async () => {
  log.take = undefined;
  log.clear();
  await mesh?.close();
  mesh = undefined;
  otel.exporter.reset();
});
afterAll(async () => {
  instrumentation.disable();
  await pods.close();
  await otel.shutdown();
});

const ROUTE = '  - name: primary\n    route: [{ destination: { host: reviews } }]\n    retries: { attempts: 2, retryOn: 5xx }';

function clientSpans(): ReadableSpan[] {
  return otel
    .spans()
    .filter((s) => s.kind === SpanKind.CLIENT)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
}

async function retriedRequest(tracing?: 'own' | 'enrich'): Promise<{ traceId: string; spanId: string }> {
  mesh = await meshOf(reviews(pods.port, ROUTE), tracing ? { telemetry: { tracing } } : {});
  let first = true;
  log.take = (s) => {
    if (!first) return false;
    first = false;
    s.res.writeHead(503).end('busy');
    return true;
  };
  const caller = trace.getTracer('test').startSpan('caller');
  await context.with(trace.setSpan(context.active(), caller), async () => {
    const res = await mesh!.request(`http://reviews:${pods.port}/`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
  });
  caller.end();
  return { traceId: caller.spanContext().traceId, spanId: caller.spanContext().spanId };
}

describe('coexistence with @opentelemetry/instrumentation-undici', () => {
  it("auto: one span per attempt (the instrumentation's), enriched with the mesh attributes; one traceparent each", async () => {
    const { traceId, spanId } = await retriedRequest();
    const spans = clientSpans();
    expect(spans).toHaveLength(2);
    for (const s of spans) {
      expect(s.instrumentationScope.name).toBe('@opentelemetry/instrumentation-undici');
      expect(s.spanContext().traceId).toBe(traceId);
      expect(s.parentSpanContext?.spanId).toBe(spanId);
      expect(s.attributes['sidecarless.route']).toBe('primary');
      expect(s.attributes['sidecarless.destination.host']).toBe('reviews.shop.svc.cluster.local');
      // The service the caller named, not the pod the instrumentation saw as origin.
      expect(s.attributes['server.address']).toBe('reviews');
    }
    expect(spans[0]!.attributes['http.response.status_code']).toBe(503);
    expect(spans[1]!.attributes['http.request.resend_count']).toBe(1);
    expect(spans[1]!.attributes['sidecarless.retry.reason']).toBe('503');
    expect(log.seen).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      const header = log.seen[i]!.headers.traceparent;
      expect(typeof header).toBe('string');
      expect(header).toBe(`00-${traceId}-${spans[i]!.spanContext().spanId}-01`);
    }
  });

  it("auto with no caller span: the instrumentation's attempt spans share one trace under the mesh's request span", async () => {
    mesh = await meshOf(reviews(pods.port, ROUTE));
    let first = true;
    log.take = (s) => {
      if (!first) return false;
      first = false;
      s.res.writeHead(503).end('busy');
      return true;
    };
    const res = await mesh.request(`http://reviews:${pods.port}/`);
    await res.body.dump();
    expect(res.statusCode).toBe(200);
    const parent = otel.spans().find((s) => s.name === 'sidecarless.request')!;
    expect(parent.parentSpanContext).toBeUndefined();
    const spans = clientSpans();
    expect(spans).toHaveLength(2);
    for (const s of spans) {
      expect(s.instrumentationScope.name).toBe('@opentelemetry/instrumentation-undici');
      expect(s.spanContext().traceId).toBe(parent.spanContext().traceId);
      expect(s.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    }
  });

  it('tracing: "own" forces the mesh\'s spans and keeps the instrumentation from adding its own', async () => {
    const { traceId } = await retriedRequest('own');
    const spans = clientSpans();
    expect(spans.map((s) => s.instrumentationScope.name)).toEqual(['sidecarless', 'sidecarless']);
    for (let i = 0; i < 2; i++) expect(log.seen[i]!.headers.traceparent).toBe(`00-${traceId}-${spans[i]!.spanContext().spanId}-01`);
  });
});
