import { credentials, Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { ServerWritableStream, ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, fail, GrpcPods, STREAM_SERVICE, StreamClient } from '../helpers/grpc-pods.js';
import type { StreamReply } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { OtelHarness } from '../helpers/otel.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';

const insecure = credentials.createInsecure();

/** A service on both pods; `annotations` on its DestinationRule; round robin, so a retry or hedge goes to the other pod. */
function service(name: string, port: number, annotations: string, route = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.2 }, { address: 127.0.0.3 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop${annotations ? `, annotations: { ${annotations} }` : ''} }
spec:
  host: ${name}.shop.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
${
  route
    ? `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  http:
  - route: [{ destination: { host: ${name}.shop.svc.cluster.local } }]
    ${route}
---
`
    : ''
}`;
}

/**
 * Pods serving `test.Stream/List` on one port: the first pod to get a call holds it (sends nothing
 * until the call is cancelled), the others stream two messages and end.
 */
class ListPods {
  port = 0;
  holder: string | undefined;
  readonly received: string[] = [];
  readonly cancelled: string[] = [];
  private readonly servers: Server[] = [];

  static async start(addresses: readonly string[]): Promise<ListPods> {
    const pods = new ListPods();
    for (const address of addresses) {
      const server = new Server();
      const unimplemented = (_call: unknown, callback: (error: { code: number }) => void): void => callback({ code: status.UNIMPLEMENTED });
      server.addService(STREAM_SERVICE, {
        list: (call: ServerWritableStream<unknown, StreamReply>) => pods.list(address, call),
        collect: unimplemented,
        chat: (call: ServerWritableStream<unknown, StreamReply>) => call.end(),
      });
      pods.port = await new Promise<number>((resolve, reject) =>
        server.bindAsync(`${address}:${pods.port}`, ServerCredentials.createInsecure(), (error, port) => (error ? reject(error) : resolve(port))),
      );
      pods.servers.push(server);
    }
    return pods;
  }

  private list(pod: string, call: ServerWritableStream<unknown, StreamReply>): void {
    this.received.push(pod);
    this.holder ??= pod;
    if (pod === this.holder) {
      call.on('cancelled', () => this.cancelled.push(pod));
      return;
    }
    for (let index = 0; index < 2; index++) call.write({ pod, index, body: null, deadlineMs: null });
    call.end();
  }

  close(): void {
    for (const server of this.servers) server.forceShutdown();
  }
}

describe('gRPC hedging (sidecarless.io/hedge-after on the DestinationRule)', () => {
  let pods: GrpcPods;
  let listPods: ListPods;
  let mesh: Mesh;
  let clock: TestClock;
  let otel: OtelHarness;
  const clients: { close(): void }[] = [];
  /** The pod holding calls (the first to receive one), its held calls' answers, and the calls it saw cancelled. */
  let holder: string | undefined;
  let held: (() => void)[] = [];
  let cancelled: string[] = [];

  beforeAll(async () => {
    pods = await GrpcPods.start(['127.0.0.2', '127.0.0.3']);
    listPods = await ListPods.start(['127.0.0.2', '127.0.0.3']);
    clock = new TestClock();
    // Metrics only: the hedges counter.
    otel = new OtelHarness({ tracing: false });
    mesh = await meshFromYaml(
      [
        service('hedged', pods.port, 'sidecarless.io/hedge-after: 50ms'),
        service('plain', pods.port, ''),
        service('noretry', pods.port, 'sidecarless.io/hedge-after: 50ms', 'retries: { attempts: 0 }'),
        service('feed', listPods.port, 'sidecarless.io/hedge-after: 50ms'),
      ].join(''),
      { namespace: 'shop', dns: false, clock },
    );
  });

  beforeEach(() => {
    for (const release of held) release();
    holder = undefined;
    held = [];
    cancelled = [];
    // The first pod to get a call holds it (never answers while the test runs); the other answers.
    pods.behave = (call, callback, pod) => {
      holder ??= pod;
      if (pod !== holder) return false;
      call.on('cancelled', () => cancelled.push(pod));
      held.push(() => fail(callback, status.PERMISSION_DENIED, 'released at the end of the test'));
      return true;
    };
  });

  afterAll(async () => {
    for (const release of held) release();
    for (const c of clients) c.close();
    await mesh?.close();
    await pods?.close();
    await listPods?.close();
    await otel?.shutdown();
  });

  const echo = (name: string): EchoClient => {
    const client = new EchoClient(`mesh:///${name}.shop:${pods.port}`, insecure, meshGrpcOptions(mesh));
    clients.push(client);
    return client;
  };

  const receivedSince = (start: number, method = '/test.Echo/Who') => pods.received.slice(start).filter((r) => r.method === method);

  it('sends a unary call again to the other pod when the first holds it: the answer wins, the held call is cancelled', async () => {
    const client = echo('hedged');
    const start = pods.received.length;
    const pending = callEcho(client);
    await vi.waitFor(() => expect(receivedSince(start)).toHaveLength(1));
    // The hedge delay passes with no answer from the holding pod.
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(50);
    const outcome = await pending;
    expect(outcome.ok).toBe(true);
    expect(outcome.ok && outcome.reply.pod).not.toBe(holder);
    expect(receivedSince(start).map((r) => r.pod)).toEqual([holder, outcome.ok ? outcome.reply.pod : '']);
    await vi.waitFor(() => expect(cancelled).toEqual([holder]));
    // Counted as HTTP's hedges are, per destination.
    const hedges = (await otel.metric('sidecarless.hedges')).filter((p) => p.attributes['sidecarless.destination.host'] === 'hedged.shop.svc.cluster.local');
    expect(hedges.map((p) => p.value)).toEqual([1]);
  });

  it('hedges a server-streaming call: the first response to start wins, the held one is cancelled', async () => {
    const client = new StreamClient(`mesh:///feed.shop:${listPods.port}`, insecure, meshGrpcOptions(mesh));
    clients.push(client);
    const stream = client.list({ count: 2 }, new Metadata(), {});
    const messages: StreamReply[] = [];
    const ended = new Promise<number>((resolve) => {
      stream.on('data', (m: StreamReply) => messages.push(m));
      stream.on('error', (e: ServiceError) => resolve(e.code));
      stream.on('status', (s: { code: number }) => {
        if (s.code === status.OK) resolve(s.code);
      });
    });
    await vi.waitFor(() => expect(listPods.received).toHaveLength(1));
    expect(clock.runNext(isRequestTimer)?.delayMs).toBe(50);
    expect(await ended).toBe(status.OK);
    const answering = listPods.received[1];
    expect(answering).toBeDefined();
    expect(answering).not.toBe(listPods.holder);
    expect(messages.map((m) => m.pod)).toEqual([answering, answering]);
    await vi.waitFor(() => expect(listPods.cancelled).toEqual([listPods.holder]));
  });

  it('does not hedge a call to a destination without the annotation', async () => {
    const client = echo('plain');
    const start = pods.received.length;
    const pending = callEcho(client);
    await vi.waitFor(() => expect(receivedSince(start)).toHaveLength(1));
    expect(clock.waiting.filter(isRequestTimer)).toEqual([]);
    // The holding pod's answer is the caller's: nothing else was sent.
    for (const release of held) release();
    held = [];
    const outcome = await pending;
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.details).toBe('released at the end of the test');
    expect(receivedSince(start).map((r) => r.pod)).toEqual([holder]);
  });

  it('does not hedge when the route allows no retry: a hedge is a retry', async () => {
    const client = echo('noretry');
    const start = pods.received.length;
    const pending = callEcho(client);
    await vi.waitFor(() => expect(receivedSince(start)).toHaveLength(1));
    expect(clock.waiting.filter(isRequestTimer)).toEqual([]);
    for (const release of held) release();
    held = [];
    expect((await pending).ok).toBe(false);
    expect(receivedSince(start).map((r) => r.pod)).toEqual([holder]);
  });

  it('never hedges a client-streaming call', async () => {
    const client = new StreamClient(`mesh:///hedged.shop:${pods.port}`, insecure, meshGrpcOptions(mesh));
    clients.push(client);
    const start = pods.received.length;
    let finish: (code: number) => void = () => {};
    const done = new Promise<number>((resolve) => (finish = resolve));
    const call = client.collect(new Metadata(), {}, (error) => finish(error ? error.code : status.OK));
    call.write({ n: 1 });
    await vi.waitFor(() => expect(receivedSince(start, '/test.Stream/Collect')).toHaveLength(1));
    // The request stream is still open: no hedge timer, ever.
    expect(clock.waiting.filter(isRequestTimer)).toEqual([]);
    call.end();
    expect(await done).toBe(status.OK);
    expect(clock.waiting.filter(isRequestTimer)).toEqual([]);
  });
});
