import { credentials, Metadata, status } from '@grpc/grpc-js';
import { trace } from '@opentelemetry/api';
import type { DataPoint, Histogram } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions, meshServerInterceptor } from '../../src/grpc/index.js';
import { callEcho, EchoClient, fail, GrpcPods, StreamClient } from '../helpers/grpc-pods.js';
import type { Outcome } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { OtelHarness } from '../helpers/otel.js';

const SPAN_KIND_INTERNAL = 0;
const SPAN_KIND_SERVER = 1;
const SPAN_KIND_CLIENT = 2;
const SPAN_STATUS_ERROR = 2;

function config(port: number): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.2, labels: { app: reviews, version: v1 } }, { address: 127.0.0.3, labels: { app: reviews, version: v1 } }]
---
# Round robin: a retry, which avoids the pod already tried, lands on the other pod every time
# (least-request picks at random and may, rarely, pick the tried pod again, as Envoy may).
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - name: broken
    match: [{ headers: { x-fault: { exact: "abort" } } }]
    fault: { abort: { grpcStatus: RESOURCE_EXHAUSTED, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
  - name: primary
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
    retries: { attempts: 2, retryOn: unavailable }
`;
}

function sum(points: DataPoint<number | Histogram>[], test: (a: Record<string, unknown>) => boolean): number {
  let n = 0;
  for (const p of points) if (test(p.attributes)) n += typeof p.value === 'number' ? p.value : p.value.count;
  return n;
}

/** Sum of the recorded values (a histogram's `sum`) of the points `test` selects. */
function total(points: DataPoint<number | Histogram>[], test: (a: Record<string, unknown>) => boolean): number {
  let n = 0;
  for (const p of points) if (test(p.attributes)) n += typeof p.value === 'number' ? p.value : (p.value.sum ?? 0);
  return n;
}

/** A JSON message's size on the wire: its serialized bytes and gRPC's 5-byte prefix. */
const wire = (message: unknown): number => Buffer.byteLength(JSON.stringify(message)) + 5;

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

describe('gRPC telemetry: RPC spans, traceparent in metadata, Istio metrics', () => {
  let otel: OtelHarness;
  let pods: GrpcPods;
  let server: Mesh;
  let client: Mesh;
  let echo: EchoClient;
  /** The first call of a test that sets it fails UNAVAILABLE at the pod (retried by the route). */
  let failFirst = false;

  beforeAll(async () => {
    otel = new OtelHarness();
    // The pods' own mesh: the server interceptor records reporter="destination".
    server = await meshFromYaml('', { namespace: 'shop', labels: { app: 'reviews', version: 'v1' }, telemetry: { istioMetrics: true } });
    pods = await GrpcPods.start(['127.0.0.2', '127.0.0.3'], [meshServerInterceptor(server)]);
    pods.behave = (_call, callback) => {
      if (!failFirst) return false;
      failFirst = false;
      return fail(callback, status.UNAVAILABLE, 'pod busy');
    };
    client = await meshFromYaml(config(pods.port), {
      namespace: 'shop',
      labels: { app: 'productpage', version: 'v1' },
      telemetry: { istioMetrics: true, workload: { name: 'productpage-v1' } },
    });
    echo = new EchoClient('mesh:///reviews.shop:' + pods.port, credentials.createInsecure(), meshGrpcOptions(client));
  });
  afterEach(() => {
    failFirst = false;
    otel.exporter.reset();
  });
  afterAll(async () => {
    echo.close();
    await pods.close();
    await client.close();
    await server.close();
    await otel.shutdown();
  });

  it('a CLIENT span per attempt under the caller span, traceparent sent, SERVER spans continuing the trace', async () => {
    failFirst = true;
    const tracer = trace.getTracer('test');
    let callerTrace = '';
    let callerSpan = '';
    const outcome = await tracer.startActiveSpan('caller', async (span) => {
      callerTrace = span.spanContext().traceId;
      callerSpan = span.spanContext().spanId;
      try {
        return await callEcho(echo);
      } finally {
        span.end();
      }
    });
    // The pod's UNAVAILABLE was retried (retryOn: unavailable): the caller saw the second attempt.
    expect(outcome.ok).toBe(true);
    const spans = otel.spans();
    const clients = spans.filter((s) => s.kind === SPAN_KIND_CLIENT);
    expect(clients.map((s) => s.name)).toEqual(['test.Echo/Who', 'test.Echo/Who']);
    for (const s of clients) {
      expect(s.spanContext().traceId).toBe(callerTrace);
      expect(parentOf(s)).toBe(callerSpan);
      expect(s.attributes['rpc.system']).toBe('grpc');
      expect(s.attributes['rpc.service']).toBe('test.Echo');
      expect(s.attributes['rpc.method']).toBe('Who');
      expect(s.attributes['server.address']).toBe('reviews.shop');
      expect(s.attributes['sidecarless.route']).toBe('primary');
      expect(s.attributes['network.peer.port']).toBe(pods.port);
    }
    const [first, second] = clients as [ReadableSpan, ReadableSpan];
    expect(first.attributes['rpc.grpc.status_code']).toBe(status.UNAVAILABLE);
    expect(first.status.code).toBe(SPAN_STATUS_ERROR);
    expect(second.attributes['rpc.grpc.status_code']).toBe(status.OK);
    expect(second.attributes['sidecarless.resend_count']).toBe(1);
    expect(second.attributes['sidecarless.retry.reason']).toBe(`grpc-status ${status.UNAVAILABLE}`);
    // The retry went to the other pod.
    expect(second.attributes['network.peer.address']).not.toBe(first.attributes['network.peer.address']);

    // The pod received the second attempt's trace context in the call's metadata.
    const reply = (outcome as Extract<Outcome, { ok: true }>).reply;
    expect(reply.metadata.traceparent).toBe(`00-${callerTrace}-${second.spanContext().spanId}-01`);

    // Each pod's server interceptor continued the trace under the attempt that reached it.
    const servers = spans.filter((s) => s.kind === SPAN_KIND_SERVER);
    expect(servers.map((s) => s.name)).toEqual(['test.Echo/Who', 'test.Echo/Who']);
    expect(servers.map(parentOf).sort()).toEqual([first.spanContext().spanId, second.spanContext().spanId].sort());
    const failed = servers.find((s) => parentOf(s) === first.spanContext().spanId)!;
    expect(failed.spanContext().traceId).toBe(callerTrace);
    expect(failed.attributes['rpc.grpc.status_code']).toBe(status.UNAVAILABLE);
    expect(failed.attributes['rpc.service']).toBe('test.Echo');
    expect(failed.attributes['rpc.method']).toBe('Who');
    expect(failed.status.code).toBe(SPAN_STATUS_ERROR);
    const served = servers.find((s) => parentOf(s) === second.spanContext().spanId)!;
    expect(served.attributes['rpc.grpc.status_code']).toBe(status.OK);
    expect(served.status.code).not.toBe(SPAN_STATUS_ERROR);
  });

  it('without a caller span, the retried attempts share one trace under the call span', async () => {
    failFirst = true;
    const outcome = await callEcho(echo);
    expect(outcome.ok).toBe(true);
    const spans = otel.spans();
    const call = spans.find((s) => s.kind === SPAN_KIND_INTERNAL && s.name === 'sidecarless.request')!;
    expect(call).toBeDefined();
    expect(call.attributes['sidecarless.attempts']).toBe(2);
    const clients = spans.filter((s) => s.kind === SPAN_KIND_CLIENT);
    expect(clients).toHaveLength(2);
    for (const s of clients) {
      expect(s.spanContext().traceId).toBe(call.spanContext().traceId);
      expect(parentOf(s)).toBe(call.spanContext().spanId);
    }
  });

  it('a call the mesh answers itself (fault abort) gets a span of its own, and no pod is called', async () => {
    const before = pods.received.length;
    const outcome = await callEcho(echo, 'who', { 'x-fault': 'abort' });
    expect(outcome.ok ? 'ok' : outcome.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(pods.received.length).toBe(before);
    const clients = otel.spans().filter((s) => s.kind === SPAN_KIND_CLIENT);
    expect(clients).toHaveLength(1);
    expect(clients[0]!.attributes['rpc.grpc.status_code']).toBe(status.RESOURCE_EXHAUSTED);
    expect(clients[0]!.attributes['sidecarless.local_reply']).toBe('fault-abort');
    expect(clients[0]!.attributes['sidecarless.response_flags']).toBe('FI');
    expect(clients[0]!.status.code).toBe(SPAN_STATUS_ERROR);
  });

  it("Istio's metrics with request_protocol=grpc and grpc_response_status, as source and as destination", async () => {
    const source = (a: Record<string, unknown>): boolean => a.reporter === 'source' && a.request_protocol === 'grpc';
    const destination = (a: Record<string, unknown>): boolean => a.reporter === 'destination' && a.request_protocol === 'grpc';
    const requests = await otel.metric('istio_requests_total');
    // So far: two calls answered OK after a retry, one fault abort.
    expect(sum(requests, (a) => source(a) && a.grpc_response_status === '0' && a.response_code === '200')).toBe(2);
    const ok = requests.find((p) => source(p.attributes) && p.attributes.grpc_response_status === '0')!.attributes;
    expect(ok).toMatchObject({
      source_workload: 'productpage-v1',
      source_app: 'productpage',
      destination_service: 'reviews.shop.svc.cluster.local',
      destination_service_name: 'reviews',
      destination_service_namespace: 'shop',
      destination_app: 'reviews',
      response_flags: '-',
    });
    expect(sum(requests, (a) => source(a) && a.grpc_response_status === String(status.RESOURCE_EXHAUSTED) && a.response_flags === 'FI')).toBe(1);
    // The pods saw four attempts: two refused with UNAVAILABLE, two served.
    expect(sum(requests, (a) => destination(a) && a.grpc_response_status === '0')).toBe(2);
    expect(sum(requests, (a) => destination(a) && a.grpc_response_status === String(status.UNAVAILABLE))).toBe(2);
    const durations = await otel.metric('istio_request_duration_milliseconds');
    expect(sum(durations, (a) => source(a) && a.grpc_response_status === '0')).toBe(2);
    expect(sum(durations, (a) => destination(a) && a.grpc_response_status === '0')).toBe(2);
  });

  it('istio_request_bytes / istio_response_bytes: each message serialized plus its 5-byte prefix, source and destination; a retried call counted once at the source', async () => {
    const source = (a: Record<string, unknown>): boolean => a.reporter === 'source' && a.request_protocol === 'grpc' && a.grpc_response_status === '0';
    const destination = (a: Record<string, unknown>): boolean => a.reporter === 'destination' && a.request_protocol === 'grpc';
    const bytes = async (): Promise<number[]> => {
      const requests = await otel.metric('istio_request_bytes');
      const responses = await otel.metric('istio_response_bytes');
      return [total(requests, source), total(responses, source), total(requests, destination), total(responses, destination)];
    };
    const before = await bytes();
    const stream = new StreamClient('mesh:///reviews.shop:' + pods.port, credentials.createInsecure(), meshGrpcOptions(client));
    try {
      const replies = await new Promise<unknown[]>((resolve, reject) => {
        const got: unknown[] = [];
        const call = stream.list({ count: 3 }, new Metadata(), {});
        call.on('data', (m: unknown) => got.push(m));
        call.on('error', reject);
        call.on('end', () => resolve(got));
      });
      expect(replies).toHaveLength(3);
      const responseBytes = replies.reduce<number>((n, m) => n + wire(m), 0);
      // The status may be recorded just after the last message reached the caller.
      for (let i = 0; i < 50 && (await bytes())[1] === before[1]; i++) await new Promise((r) => setImmediate(r));
      const after = await bytes();
      expect(after.map((v, i) => v - before[i]!)).toEqual([wire({ count: 3 }), responseBytes, wire({ count: 3 }), responseBytes]);

      // A unary call whose first attempt fails at the pod: the source counts the call once, the pods each attempt.
      failFirst = true;
      const outcome = await callEcho(echo);
      expect(outcome.ok).toBe(true);
      const last = await bytes();
      const reply = outcome.ok ? wire(outcome.reply) : 0;
      expect(last.map((v, i) => v - after[i]!)).toEqual([wire({}), reply, 2 * wire({}), reply]);
    } finally {
      stream.close();
    }
  });

  it('a server-streaming call: one CLIENT span for the whole stream, ended with its status, and the SERVER span under it', async () => {
    const stream = new StreamClient('mesh:///reviews.shop:' + pods.port, credentials.createInsecure(), meshGrpcOptions(client));
    try {
      const count = await new Promise<number>((resolve, reject) => {
        let n = 0;
        const call = stream.list({ count: 3 }, new Metadata(), {});
        call.on('data', () => n++);
        call.on('error', reject);
        call.on('end', () => resolve(n));
      });
      expect(count).toBe(3);
      // The client span ends with the status, which may come just after the last message.
      for (let i = 0; i < 50 && !otel.spans().some((s) => s.kind === SPAN_KIND_CLIENT); i++) await new Promise((r) => setImmediate(r));
      const clients = otel.spans().filter((s) => s.kind === SPAN_KIND_CLIENT);
      expect(clients.map((s) => [s.name, s.attributes['rpc.method'], s.attributes['rpc.grpc.status_code']])).toEqual([['test.Stream/List', 'List', status.OK]]);
      const servers = otel.spans().filter((s) => s.kind === SPAN_KIND_SERVER);
      expect(servers.map((s) => [s.name, parentOf(s)])).toEqual([['test.Stream/List', clients[0]!.spanContext().spanId]]);
    } finally {
      stream.close();
    }
  });

  it('telemetry off: no spans, no traceparent in the metadata', async () => {
    const off = await meshFromYaml(config(pods.port), { namespace: 'shop', telemetry: false });
    const quiet = new EchoClient('mesh:///reviews.shop:' + pods.port, credentials.createInsecure(), meshGrpcOptions(off));
    try {
      expect(off.grpcCore().telemetry()).toBeUndefined();
      const outcome = await callEcho(quiet);
      expect(outcome.ok && outcome.reply.metadata.traceparent).toBeUndefined();
      expect(otel.spans().filter((s) => s.kind === SPAN_KIND_CLIENT)).toHaveLength(0);
    } finally {
      quiet.close();
      await off.close();
    }
  });
});
