import { credentials, Metadata, status } from '@grpc/grpc-js';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { GrpcPods, StreamClient } from '../helpers/grpc-pods.js';
import type { StreamReply } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

/** Every message of a response stream, and how it ended. */
function drain(stream: ClientReadableStream<StreamReply>): Promise<{ messages: StreamReply[]; code: number; details: string }> {
  return new Promise((resolve) => {
    const messages: StreamReply[] = [];
    stream.on('data', (m: StreamReply) => messages.push(m));
    stream.on('error', (e: ServiceError) => resolve({ messages, code: e.code, details: e.details }));
    stream.on('status', (s: { code: number; details: string }) => {
      if (s.code === status.OK) resolve({ messages, code: s.code, details: s.details });
    });
  });
}

describe('streaming calls through the mesh', () => {
  let pods: GrpcPods;
  let mesh: Mesh;
  let client: StreamClient;
  const calls = (method: string): string[] => pods.received.filter((r) => r.method === method).map((r) => r.pod);

  beforeAll(async () => {
    pods = await GrpcPods.start(['127.0.0.2', '127.0.0.3']);
    mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: feed, namespace: shop }
spec:
  hosts: [feed.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.2, labels: { version: v1 } }, { address: 127.0.0.3, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: feed, namespace: shop }
spec:
  host: feed.shop.svc.cluster.local
  # Round robin: a retry, which avoids the pod already tried, lands on the other pod every time.
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: feed, namespace: shop }
spec:
  hosts: [feed.shop.svc.cluster.local]
  http:
  - match: [{ uri: { exact: /test.Stream/Chat } }]
    route: [{ destination: { host: feed.shop.svc.cluster.local, subset: v2 } }]
  - route: [{ destination: { host: feed.shop.svc.cluster.local } }]
    timeout: 30s
    retries: { attempts: 2, retryOn: unavailable }
`,
      { namespace: 'shop' },
    );
    client = new StreamClient(`mesh:///feed.shop:${pods.port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
  });
  afterEach(() => {
    pods.streamFailure = undefined;
    pods.received.length = 0;
  });
  afterAll(async () => {
    client.close();
    await pods.close();
    await mesh.close();
  });

  it('client streaming: every message reaches the pod, with the route timeout as its deadline', async () => {
    const reply = await new Promise<StreamReply>((resolve, reject) => {
      const call = client.collect(new Metadata(), {}, (error, r) => (error ? reject(error) : resolve(r!)));
      for (const n of [1, 2, 3]) call.write({ n });
      call.end();
    });
    expect(reply.body).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    // The route's 30 s timeout is the call's deadline (none was given).
    expect(reply.deadlineMs).not.toBeNull();
    expect(reply.deadlineMs!).toBeLessThanOrEqual(30_000);
  });

  it('client streaming: a pod failing UNAVAILABLE before answering is retried, the messages sent again to the other pod', async () => {
    let failed = '';
    pods.streamFailure = (pod) => {
      if (failed !== '') return undefined;
      failed = pod;
      return { when: 'before', code: status.UNAVAILABLE };
    };
    const reply = await new Promise<StreamReply>((resolve, reject) => {
      const call = client.collect(new Metadata(), {}, (error, r) => (error ? reject(error) : resolve(r!)));
      for (const n of [1, 2, 3]) call.write({ n });
      call.end();
    });
    expect(reply.pod).not.toBe(failed);
    expect(reply.body).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(calls('/test.Stream/Collect')).toEqual([failed, reply.pod]);
  });

  it('server streaming: all messages from one pod, with the deadline', async () => {
    const out = await drain(client.list({ count: 4 }, new Metadata(), {}));
    expect(out.code).toBe(status.OK);
    expect(out.messages.map((m) => m.index)).toEqual([0, 1, 2, 3]);
    expect(new Set(out.messages.map((m) => m.pod)).size).toBe(1);
    expect(out.messages[0]!.deadlineMs!).toBeLessThanOrEqual(30_000);
  });

  it('server streaming: UNAVAILABLE before any message is retried on the other pod', async () => {
    let failed = '';
    pods.streamFailure = (pod) => {
      if (failed !== '') return undefined;
      failed = pod;
      return { when: 'before', code: status.UNAVAILABLE };
    };
    const out = await drain(client.list({ count: 3 }, new Metadata(), {}));
    expect(out.code).toBe(status.OK);
    expect(out.messages.map((m) => m.index)).toEqual([0, 1, 2]);
    expect(out.messages[0]!.pod).not.toBe(failed);
    expect(calls('/test.Stream/List')).toEqual([failed, out.messages[0]!.pod]);
  });

  it('server streaming: once a message was received, UNAVAILABLE is not retried: the caller gets the message, then the status', async () => {
    pods.streamFailure = () => ({ when: 'after-first', code: status.UNAVAILABLE });
    const out = await drain(client.list({ count: 3 }, new Metadata(), {}));
    expect(out.messages.map((m) => m.index)).toEqual([0]);
    expect(out.code).toBe(status.UNAVAILABLE);
    expect(calls('/test.Stream/List')).toHaveLength(1);
  });

  it('bidi streaming: routed on its path (to v2), one answer per message, in order', async () => {
    const call = client.chat(new Metadata(), {});
    const answers: StreamReply[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      call.on('data', (m: StreamReply) => {
        answers.push(m);
        if (answers.length === 1) {
          // The second message is sent after the first answer came: a real conversation.
          call.write({ say: 'second' });
          call.end();
        }
      });
      call.on('error', reject);
      call.on('end', () => resolve());
    });
    call.write({ say: 'first' });
    await ended;
    expect(answers.map((a) => [a.pod, a.index, a.body])).toEqual([
      ['127.0.0.3', 0, { say: 'first' }],
      ['127.0.0.3', 1, { say: 'second' }],
    ]);
  });
});
