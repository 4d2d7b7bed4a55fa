import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { OtelHarness } from '../helpers/otel.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';
import { meshOf, reviews } from './fixtures.js';

/**
 * One trace per logical request: the attempts of a request (first try, retries, hedges) share a
 * trace. With no span active in the caller, a span of the logical request (INTERNAL,
 * `sidecarless.request`) is their parent; with one, the caller's span is, and no other is made.
 */
let pods: Pods;
let log: RequestLog;
let otel: OtelHarness;
let mesh: Mesh | undefined;

beforeAll(async () => {
  otel = new OtelHarness();
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
  await pods.close();
  await otel.shutdown();
});

async function get(): Promise<number> {
  const res = await mesh!.request(`http://reviews:${pods.port}/`);
  await res.body.dump();
  return res.statusCode;
}

const byStart = (a: ReadableSpan, b: ReadableSpan) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1];
const attempts = () =>
  otel
    .spans()
    .filter((s) => s.kind === SpanKind.CLIENT)
    .sort(byStart);
const requestSpans = () => otel.spans().filter((s) => s.name === 'sidecarless.request');

/** The pods answer 503 to the first `n` requests. */
function failFirst(n: number): void {
  let left = n;
  log.take = (s) => {
    if (left <= 0) return false;
    left--;
    s.res.writeHead(503).end('busy');
    return true;
  };
}

/** The trace id and parent span id in each `traceparent` the pods received, in order. */
function receivedContexts(): { traceId: string; parentId: string }[] {
  return log.seen.map((s) => {
    const [, traceId, parentId] = String(s.headers.traceparent).split('-');
    return { traceId: traceId!, parentId: parentId! };
  });
}

describe('retries with no span active in the caller', () => {
  it('every attempt span is in one trace, under one parent: the span of the logical request', async () => {
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 2, retryOn: 5xx }'));
    failFirst(2);
    expect(trace.getActiveSpan()).toBeUndefined();
    expect(await get()).toBe(200);

    const spans = attempts();
    expect(spans.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 503, 200]);
    const [parent] = requestSpans() as [ReadableSpan];
    expect(requestSpans()).toHaveLength(1);
    expect(parent.kind).toBe(SpanKind.INTERNAL);
    expect(parent.parentSpanContext).toBeUndefined();
    const traceId = parent.spanContext().traceId;
    for (const s of spans) {
      expect(s.spanContext().traceId).toBe(traceId);
      expect(s.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    }
    // The pods joined that trace too, each under its own attempt's span.
    expect(receivedContexts()).toEqual(spans.map((s) => ({ traceId, parentId: s.spanContext().spanId })));
    // The logical request's outcome, as the caller saw it.
    expect(parent.attributes['sidecarless.attempts']).toBe(3);
    expect(parent.attributes['http.response.status_code']).toBe(200);
    expect(parent.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('retries spent on 503s: the request span ends in error with the status the caller got', async () => {
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 1, retryOn: 5xx }'));
    failFirst(2);
    expect(await get()).toBe(503);
    const [parent] = requestSpans() as [ReadableSpan];
    expect(attempts().map((s) => s.parentSpanContext?.spanId)).toEqual([parent.spanContext().spanId, parent.spanContext().spanId]);
    expect(parent.attributes['sidecarless.attempts']).toBe(2);
    expect(parent.attributes['error.type']).toBe('503');
    expect(parent.attributes['sidecarless.response_flags']).toBe('URX');
    expect(parent.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('a hedged request: the primary and the hedge share the request span as parent', async () => {
    const clock = new TestClock();
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]', { hedgeAfter: '50ms' }), { clock });
    // The first attempt's pod is slow: it is never answered (closing the pods ends it).
    let slow: string | undefined;
    log.take = (s) => {
      slow ??= s.pod;
      return s.pod === slow;
    };
    const pending = get();
    await log.until(() => log.seen.length === 1);
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(50);
    expect(await pending).toBe(200);
    await vi.waitFor(() => expect(attempts()).toHaveLength(2), { timeout: 10_000 });
    const [parent] = requestSpans() as [ReadableSpan];
    const [primary, hedge] = attempts() as [ReadableSpan, ReadableSpan];
    expect(hedge.attributes['sidecarless.hedge']).toBe(true);
    for (const s of [primary, hedge]) {
      expect(s.spanContext().traceId).toBe(parent.spanContext().traceId);
      expect(s.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    }
  });

  it('a request that cannot be sent twice (retries off) makes no request span: its one attempt is the root', async () => {
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 0 }'));
    expect(await get()).toBe(200);
    expect(requestSpans()).toHaveLength(0);
    const [only] = attempts() as [ReadableSpan];
    expect(attempts()).toHaveLength(1);
    expect(only.parentSpanContext).toBeUndefined();
  });
});

describe('retries with a span active in the caller', () => {
  it('the attempts are children of the caller span, and no request span is made', async () => {
    mesh = await meshOf(reviews(pods.port, '  - route: [{ destination: { host: reviews } }]\n    retries: { attempts: 2, retryOn: 5xx }'));
    failFirst(1);
    const status = await trace.getTracer('test').startActiveSpan('handler', async (handler) => {
      try {
        return await get();
      } finally {
        handler.end();
      }
    });
    expect(status).toBe(200);
    const handler = otel.spans().find((s) => s.name === 'handler')!;
    expect(requestSpans()).toHaveLength(0);
    const spans = attempts();
    expect(spans).toHaveLength(2);
    for (const s of spans) {
      expect(s.spanContext().traceId).toBe(handler.spanContext().traceId);
      expect(s.parentSpanContext?.spanId).toBe(handler.spanContext().spanId);
    }
  });
});
