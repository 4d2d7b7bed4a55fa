import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';
import type { SeenRequest } from '../helpers/request-log.js';
import { RequestLog } from '../helpers/request-log.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';
import { meshOf, reviews } from './fixtures.js';

/**
 * Client spans per attempt with the real SDK (in-memory exporter) and real pods recording the
 * headers they receive.
 */
let pods: Pods;
let log: RequestLog;
let otel: OtelHarness;
let mesh: Mesh | undefined;

beforeAll(async () => {
  otel = new OtelHarness();
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
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
  await pods.close();
  await otel.shutdown();
});

const tracer = () => trace.getTracer('test');

/** Runs `fn` inside an active caller span (with baggage); returns the span's ids. */
async function asCaller<T>(fn: () => Promise<T>): Promise<{ result: T; traceId: string; spanId: string }> {
  const baggage = propagation.createBaggage({ tenant: { value: 'acme' } });
  return context.with(propagation.setBaggage(context.active(), baggage), () =>
    tracer().startActiveSpan('caller', async (span) => {
      try {
        const result = await fn();
        return { result, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId };
      } finally {
        span.end();
      }
    }),
  );
}

async function get(path = '/'): Promise<{ status: number; pod: string | undefined }> {
  const res = await mesh!.request(`http://reviews:${pods.port}${path}`);
  await res.body.dump();
  const pod = res.headers['x-pod'];
  return { status: res.statusCode, pod: typeof pod === 'string' ? pod : undefined };
}

/** The mesh's client spans, in the order they started. */
function clientSpans(): ReadableSpan[] {
  return otel
    .spans()
    .filter((s) => s.kind === SpanKind.CLIENT)
    .sort((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1]);
}

/** Every `traceparent` one pod request carried. */
function traceparents(s: SeenRequest): string[] {
  const v = s.headers.traceparent;
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

const ROUTE = '  - name: primary\n    route: [{ destination: { host: reviews } }]\n    retries: { attempts: 2, retryOn: 5xx }';

describe('a client span per attempt (stable HTTP client conventions)', () => {
  it('a 503 then a 200 on the other pod: two spans, children of the caller, resend_count 1 on the second', async () => {
    mesh = await meshOf(reviews(pods.port, ROUTE));
    // Whichever pod gets the first request answers 503; the retry goes to the other pod.
    let first = true;
    log.take = (s) => {
      if (!first) return false;
      first = false;
      s.res.writeHead(503).end('busy');
      return true;
    };
    const { result, traceId, spanId } = await asCaller(() => get('/ratings?id=7'));
    expect(result.status).toBe(200);
    const spans = clientSpans();
    expect(spans).toHaveLength(2);
    const [a, b] = spans as [ReadableSpan, ReadableSpan];
    for (const s of spans) {
      expect(s.name).toBe('GET');
      expect(s.spanContext().traceId).toBe(traceId);
      expect(s.parentSpanContext?.spanId).toBe(spanId);
      expect(s.attributes['http.request.method']).toBe('GET');
      expect(s.attributes['server.address']).toBe('reviews');
      expect(s.attributes['server.port']).toBe(pods.port);
      expect(s.attributes['url.full']).toBe(`http://reviews:${pods.port}/ratings?id=7`);
      expect(s.attributes['sidecarless.route']).toBe('primary');
      expect(s.attributes['sidecarless.destination.host']).toBe('reviews.shop.svc.cluster.local');
      expect(s.attributes['sidecarless.cluster']).toBe(`reviews.shop.svc.cluster.local||${pods.port}`);
    }
    expect(a.attributes['http.response.status_code']).toBe(503);
    expect(a.attributes['error.type']).toBe('503');
    expect(a.status.code).toBe(SpanStatusCode.ERROR);
    expect(a.attributes['http.request.resend_count']).toBeUndefined();
    expect(b.attributes['http.response.status_code']).toBe(200);
    expect(b.attributes['error.type']).toBeUndefined();
    expect(b.status.code).toBe(SpanStatusCode.UNSET);
    expect(b.attributes['http.request.resend_count']).toBe(1);
    expect(b.attributes['sidecarless.retry.reason']).toBe('503');
    // network.peer.* is the pod each attempt went to: two different pods, the one that answered last.
    expect(a.attributes['network.peer.address']).not.toBe(b.attributes['network.peer.address']);
    expect(b.attributes['network.peer.address']).toBe(result.pod);
    expect(b.attributes['network.peer.port']).toBe(pods.port);
  });

  it('propagates W3C trace context and baggage on every attempt, each attempt its own span as parent', async () => {
    mesh = await meshOf(reviews(pods.port, ROUTE));
    let first = true;
    log.take = (s) => {
      if (!first) return false;
      first = false;
      s.res.writeHead(503).end('busy');
      return true;
    };
    await asCaller(() => get());
    const spans = clientSpans();
    expect(log.seen).toHaveLength(2);
    for (let i = 0; i < 2; i++) {
      const seen = log.seen[i]!;
      const headers = traceparents(seen);
      expect(headers).toHaveLength(1);
      const span = spans[i]!;
      expect(headers[0]).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
      expect(seen.headers.baggage).toBe('tenant=acme');
    }
  });

  it('a hedged attempt has its own span marked as a hedge; the slower one is marked abandoned, not failed', async () => {
    const clock = new TestClock();
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]', { hedgeAfter: '50ms' }), { clock });
    const held: SeenRequest[] = [];
    let slow: string | undefined;
    log.take = (s) => {
      slow ??= s.pod;
      return s.pod === slow ? (held.push(s), true) : false;
    };
    const pending = asCaller(() => get());
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(50);
    expect((await pending).result.status).toBe(200);
    await vi.waitFor(() => expect(clientSpans()).toHaveLength(2), { timeout: 10_000 });
    const [primary, hedge] = clientSpans() as [ReadableSpan, ReadableSpan];
    expect(hedge.attributes['sidecarless.hedge']).toBe(true);
    expect(hedge.attributes['http.request.resend_count']).toBe(1);
    expect(hedge.attributes['http.response.status_code']).toBe(200);
    expect(primary.attributes['network.peer.address']).toBe(slow);
    expect(primary.attributes['sidecarless.abandoned']).toBe(true);
    expect(primary.status.code).toBe(SpanStatusCode.UNSET);
    expect(primary.attributes['error.type']).toBeUndefined();
  });

  it('caller cancellation is not an error: the span ends with its status unset', async () => {
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]'));
    log.take = () => true; // the pod never answers
    const controller = new AbortController();
    const pending = mesh.fetch(`http://reviews:${pods.port}/`, { signal: controller.signal });
    await log.until(() => log.seen.length === 1);
    controller.abort();
    await expect(pending).rejects.toThrow();
    await vi.waitFor(() => expect(clientSpans()).toHaveLength(1), { timeout: 10_000 });
    const span = clientSpans()[0]!;
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
    expect(span.attributes['error.type']).toBeUndefined();
    expect(span.events.filter((e) => e.name === 'exception')).toHaveLength(0);
  });

  it('a connection failure is an error with its code as error.type', async () => {
    const yaml = reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 0 }')
      .replace('{ address: 127.0.0.3, labels: { app: reviews, version: v1 } }', '{ address: 127.0.0.9 }')
      .replace('{ address: 127.0.0.2, labels: { app: reviews, version: v1 } }, ', '');
    mesh = await meshOf(yaml);
    await expect(get()).rejects.toThrow();
    const span = clientSpans()[0]!;
    expect(span.attributes['error.type']).toBe('ECONNREFUSED');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes['network.peer.address']).toBe('127.0.0.9');
  });

  it('a request the mesh answers itself (fault abort) still gets a span, without network attributes', async () => {
    mesh = await meshOf(
      reviews(pods.port, '  - fault: { abort: { percentage: { value: 100 }, httpStatus: 503 } }\n    route: [{ destination: { host: reviews } }]'),
    );
    const { result } = await asCaller(() => get());
    expect(result.status).toBe(503);
    expect(log.seen).toHaveLength(0);
    const spans = clientSpans();
    expect(spans).toHaveLength(1);
    const span = spans[0]!;
    expect(span.attributes['sidecarless.local_reply']).toBe('fault-abort');
    expect(span.attributes['sidecarless.fault.abort']).toBe(true);
    expect(span.attributes['sidecarless.response_flags']).toBe('FI');
    expect(span.attributes['http.response.status_code']).toBe(503);
    expect(span.attributes['network.peer.address']).toBeUndefined();
  });

  it('a mirrored copy gets its own trace, linked to the caller span, not parented', async () => {
    const mirror = `
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: shadow, namespace: shop }
spec:
  hosts: [shadow.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.4 }]`;
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    mirror: { host: shadow }', { extra: mirror }));
    const { traceId, spanId } = await asCaller(() => get());
    await log.until(() => log.seen.some((s) => s.pod === '127.0.0.4'));
    await vi.waitFor(() => expect(clientSpans()).toHaveLength(2), { timeout: 10_000 });
    const copy = clientSpans().find((s) => s.attributes['sidecarless.mirror'] === true)!;
    expect(copy.spanContext().traceId).not.toBe(traceId);
    expect(copy.parentSpanContext).toBeUndefined();
    expect(copy.links.map((l) => l.context.spanId)).toEqual([spanId]);
    const seen = log.seen.find((s) => s.pod === '127.0.0.4')!;
    expect(traceparents(seen)).toEqual([`00-${copy.spanContext().traceId}-${copy.spanContext().spanId}-01`]);
  });

  it('records nothing with telemetry: false', async () => {
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]'), { telemetry: false });
    await asCaller(() => get());
    expect(clientSpans()).toHaveLength(0);
    expect(log.seen[0]!.headers.traceparent).toBeUndefined();
  });
});
