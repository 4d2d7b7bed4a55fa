import { connectivityState, credentials, getChannelzHandlers, InterceptingCall, Metadata, status } from '@grpc/grpc-js';
import type { Interceptor } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, fail, GrpcPods } from '../helpers/grpc-pods.js';
import type { Outcome } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const insecure = credentials.createInsecure();

function serviceEntry(name: string, port: number, endpoints: readonly { address: string; version: string }[]): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC }]
  endpoints: [${endpoints.map((e) => `{ address: ${e.address}, labels: { version: ${e.version} } }`).join(', ')}]
`;
}

function subsets(name: string, trafficPolicy = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop }
spec:
  host: ${name}.shop.svc.cluster.local
${trafficPolicy}  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
`;
}

async function many(client: EchoClient, n: number, method: 'who' | 'other' = 'who', metadata: Record<string, string> = {}): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for (let i = 0; i < n; i++) out.push(await callEcho(client, method, metadata));
  return out;
}

/** What grpc-js's channelz shows an operator of a channel: its calls and how many trace events it logged. */
async function channelzOf(client: EchoClient): Promise<{ callsStarted: number; events: number }> {
  const id = client.getChannel().getChannelzRef().id;
  const reply = await new Promise<{ channel: { data: { calls_started: string; trace: { num_events_logged: string } } } }>((resolve, reject) => {
    const handler = getChannelzHandlers().GetChannel as unknown as (
      call: { request: { channel_id: string } },
      callback: (error: Error | null, value?: unknown) => void,
    ) => void;
    handler({ request: { channel_id: String(id) } }, (error, value) => (error ? reject(error) : resolve(value as never)));
  });
  return { callsStarted: Number(reply.channel.data.calls_started), events: Number(reply.channel.data.trace.num_events_logged) };
}

function pods(outcomes: readonly Outcome[]): string[] {
  return outcomes.map((o) => (o.ok ? o.reply.pod : `error ${o.code}`));
}

describe('grpc-js clients through the mesh (mesh:/// targets)', () => {
  let echo: GrpcPods;
  let mesh: Mesh;
  const clients: EchoClient[] = [];
  const client = (target: string): EchoClient => {
    const c = new EchoClient(target, insecure, meshGrpcOptions(mesh));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    echo = await GrpcPods.start(['127.0.0.2', '127.0.0.3']);
    const port = echo.port;
    mesh = await meshFromYaml(
      `${serviceEntry('reviews', port, [
        { address: '127.0.0.2', version: 'v1' },
        { address: '127.0.0.3', version: 'v2' },
      ])}---
${subsets('reviews')}---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: secure, namespace: shop }
spec:
  hosts: [secure.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: ${port}, name: tls, protocol: TLS }]
  endpoints: [{ address: 127.0.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - match: [{ uri: { exact: /test.Echo/Other } }]
    route: [{ destination: { host: reviews.shop.svc.cluster.local, subset: v2 } }]
  - match: [{ headers: { x-canary: { exact: "yes" } } }]
    route: [{ destination: { host: reviews.shop.svc.cluster.local, subset: v2 } }]
  - match: [{ headers: { x-rewrite: { exact: "yes" } } }]
    rewrite: { uri: /test.Echo/Other }
    route: [{ destination: { host: reviews.shop.svc.cluster.local, subset: v1 } }]
  - match: [{ headers: { x-fault: { exact: "abort" } } }]
    fault: { abort: { grpcStatus: RESOURCE_EXHAUSTED, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews.shop.svc.cluster.local, subset: v1 } }]
  - route:
    - { destination: { host: reviews.shop.svc.cluster.local, subset: v1 }, weight: 80 }
    - { destination: { host: reviews.shop.svc.cluster.local, subset: v2 }, weight: 20 }
`,
      { namespace: 'shop', dns: false, random: seededRandom(11) },
    );
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await mesh?.close();
    await echo?.close();
  });

  it('splits calls by the VirtualService weights (80/20 within tolerance)', async () => {
    const reviews = client(`mesh:///reviews.shop:${echo.port}`);
    const outcomes = await many(reviews, 100);
    const answered = pods(outcomes);
    const v1 = answered.filter((p) => p === '127.0.0.2').length;
    const v2 = answered.filter((p) => p === '127.0.0.3').length;
    expect(v1 + v2).toBe(100);
    expect(v1 / 100).toBeGreaterThan(0.7);
    expect(v1 / 100).toBeLessThan(0.9);
  });

  it("logs no channelz event per call: the mesh's channel changes state when it connects, not for each call", async () => {
    const reviews = client(`mesh:///reviews.shop:${echo.port}`);
    await many(reviews, 5);
    const before = await channelzOf(reviews);
    expect(pods(await many(reviews, 40)).filter((p) => p.startsWith('error'))).toEqual([]);
    const after = await channelzOf(reviews);
    expect(after.callsStarted - before.callsStarted).toBeGreaterThanOrEqual(40);
    // Each call used to publish a new picker (grpc-js asks the balancer to leave idle on every call): one "state change to READY" each.
    expect(after.events - before.events).toBeLessThan(5);
  });

  it('serves calls again after its channel went idle, and the pod never sees the attempt key', async () => {
    // grpc-js's shortest idle timeout: the channel destroys its resolver and balancer, the next calls bring them back.
    const reviews = new EchoClient(`mesh:///reviews.shop:${echo.port}`, insecure, { ...meshGrpcOptions(mesh), 'grpc.client_idle_timeout_ms': 1_000 });
    clients.push(reviews);
    const answered = async (): Promise<string[]> => {
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => callEcho(reviews, 'other')));
      for (const o of outcomes) if (o.ok) expect(Object.keys(o.reply.metadata).filter((k) => k.startsWith('x-sidecarless'))).toEqual([]);
      return pods(outcomes);
    };
    expect(await answered()).toEqual(Array(6).fill('127.0.0.3'));
    expect(await answered()).toEqual(Array(6).fill('127.0.0.3'));
    const channel = reviews.getChannel();
    await new Promise<void>((resolve) => {
      const watch = (): void => {
        const state = channel.getConnectivityState(false);
        if (state === connectivityState.IDLE) return resolve();
        channel.watchConnectivityState(state, Infinity, watch);
      };
      watch();
    });
    expect(await answered()).toEqual(Array(6).fill('127.0.0.3'));
    expect(await answered()).toEqual(Array(6).fill('127.0.0.3'));
  });

  it('routes on the gRPC method path and on metadata', async () => {
    const reviews = client(`mesh:///reviews.shop:${echo.port}`);
    expect(new Set(pods(await many(reviews, 10, 'other')))).toEqual(new Set(['127.0.0.3']));
    expect(new Set(pods(await many(reviews, 10, 'who', { 'x-canary': 'yes' })))).toEqual(new Set(['127.0.0.3']));
    const plain = await callEcho(reviews, 'who', { 'x-canary': 'yes' });
    // The metadata reaches the service as sent, without the mesh's own attempt key.
    expect(plain.ok && plain.reply.metadata['x-canary']).toBe('yes');
    expect(plain.ok && Object.keys(plain.reply.metadata).filter((k) => k.startsWith('x-sidecarless'))).toEqual([]);
  });

  it("runs the caller's own interceptors around the mesh's: the mesh routes on the metadata they add, they see the reply and status", async () => {
    const seen: string[] = [];
    const canary: Interceptor = (options, next) =>
      new InterceptingCall(next(options), {
        start: (metadata, listener, proceed) => {
          metadata.set('x-canary', 'yes');
          proceed(metadata, {
            onReceiveMessage: (message: { pod: string } | null, nextMessage) => {
              seen.push(`message from ${message?.pod}`);
              nextMessage(message);
            },
            onReceiveStatus: (s, nextStatus) => {
              seen.push(`status ${s.code}`);
              nextStatus(s);
            },
          });
        },
      });
    const reviews = new EchoClient(`mesh:///reviews.shop:${echo.port}`, insecure, meshGrpcOptions(mesh, { interceptors: [canary] }));
    clients.push(reviews);
    const outcomes = await many(reviews, 4);
    expect(new Set(pods(outcomes))).toEqual(new Set(['127.0.0.3']));
    expect(seen).toEqual(Array.from({ length: 4 }, () => ['message from 127.0.0.3', `status ${status.OK}`]).flat());
  });

  it("answers a fault abort with the route's grpcStatus, without reaching a pod", async () => {
    const reviews = client(`mesh:///reviews.shop:${echo.port}`);
    const before = echo.received.length;
    const outcome = await callEcho(reviews, 'who', { 'x-fault': 'abort' });
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(!outcome.ok && outcome.details).toBe('fault filter abort');
    expect(echo.received.length).toBe(before);
  });

  it('fails a call to a service the mesh does not know with a coded error', async () => {
    const ratings = client(`mesh:///ratings.shop:${echo.port}`);
    const outcome = await callEcho(ratings);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toContain('ERR_MESH_GRPC_NO_ROUTE');
    expect(outcome.details).toContain('ratings.shop.svc.cluster.local');
    expect(outcome.metadata.get('x-sidecarless-error-code')).toEqual(['ERR_MESH_GRPC_NO_ROUTE']);
  });

  it("sends the call to the path the route's rewrite.uri gives (the pod serves the rewritten method)", async () => {
    const reviews = client(`mesh:///reviews.shop:${echo.port}`);
    const outcome = await callEcho(reviews, 'who', { 'x-rewrite': 'yes' });
    expect(outcome.ok && outcome.reply.method).toBe('/test.Echo/Other');
    expect(outcome.ok && outcome.reply.pod).toBe('127.0.0.2');
  });

  it("refuses a call to a TLS port (routed by SNI with the caller's own TLS, which a mesh:/// channel does not make), sending nothing, never plaintext", async () => {
    const secure = client(`mesh:///secure.shop:${echo.port}`);
    const before = echo.received.length;
    const outcome = await callEcho(secure);
    expect(!outcome.ok && outcome.code).toBe(status.UNAVAILABLE);
    expect(!outcome.ok && outcome.metadata.get('x-sidecarless-error-code')).toEqual(['ERR_MESH_GRPC_TLS_PORT']);
    expect(!outcome.ok && outcome.details).toContain(
      `secure.shop.svc.cluster.local port ${echo.port}: its TLS port is routed by SNI and carries the caller's own TLS`,
    );
    expect(echo.received.length).toBe(before);
  });

  it('refuses a target without a port, naming what it expects', () => {
    expect(() => client('mesh:///reviews.shop')).toThrow(/expected mesh:\/\/\/<service host>:<port>/);
  });
});

describe('retries and outlier detection fed by gRPC status', () => {
  let echo: GrpcPods;
  const meshes: Mesh[] = [];
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    echo = await GrpcPods.start(['127.0.0.4', '127.0.0.5', '127.0.0.6']);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const m of meshes) await m.close();
    await echo?.close();
  });

  async function reviewsClient(endpoints: string, trafficPolicy: string, http: string): Promise<{ mesh: Mesh; client: EchoClient }> {
    const mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${echo.port}, name: grpc, protocol: GRPC }]
  endpoints: [${endpoints}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
${trafficPolicy}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
${http}
`,
      { namespace: 'shop', dns: false, random: seededRandom(5) },
    );
    meshes.push(mesh);
    const client = new EchoClient(`mesh:///reviews.shop:${echo.port}`, insecure, meshGrpcOptions(mesh));
    clients.push(client);
    return { mesh, client };
  }

  it('retries a call that got UNAVAILABLE on the other pod: every call succeeds', async () => {
    echo.behave = (_call, callback, pod) => (pod === '127.0.0.4' ? fail(callback, status.UNAVAILABLE, 'overloaded') : false);
    const { client } = await reviewsClient(
      '{ address: 127.0.0.4 }, { address: 127.0.0.5 }',
      '',
      `  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
    retries: { attempts: 2, retryOn: unavailable }`,
    );
    const start = echo.received.length;
    const outcomes = await many(client, 10);
    expect(pods(outcomes)).toEqual(Array(10).fill('127.0.0.5'));
    // The failing pod was tried: the answers came from retries.
    expect(echo.received.slice(start).filter((r) => r.pod === '127.0.0.4').length).toBeGreaterThan(0);
  });

  it("sends the caller's metadata on every attempt and leaves the caller's Metadata object as it was", async () => {
    const onFailing: unknown[] = [];
    echo.behave = (call, callback, pod) => {
      if (pod !== '127.0.0.4') return false;
      onFailing.push(call.metadata.get('x-user')[0]);
      return fail(callback, status.UNAVAILABLE, 'overloaded');
    };
    const { client } = await reviewsClient(
      '{ address: 127.0.0.4 }, { address: 127.0.0.5 }',
      '',
      `  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
    retries: { attempts: 2, retryOn: unavailable }`,
    );
    // One object for every call, as a caller with a fixed credential would keep it.
    const metadata = new Metadata();
    metadata.set('x-user', 'ann');
    const replies: Record<string, string>[] = [];
    for (let i = 0; i < 4; i++) {
      replies.push(
        await new Promise<Record<string, string>>((resolve, reject) =>
          client.who({}, metadata, {}, (error, reply) => (error ? reject(error) : resolve(reply!.metadata))),
        ),
      );
    }
    expect(replies.map((m) => m['x-user'])).toEqual(['ann', 'ann', 'ann', 'ann']);
    expect(replies.flatMap((m) => Object.keys(m).filter((k) => k.startsWith('x-sidecarless')))).toEqual([]);
    // The failing pod got the calls that were retried, with the same metadata.
    expect(onFailing.length).toBeGreaterThan(0);
    expect(new Set(onFailing)).toEqual(new Set(['ann']));
    expect(metadata.getMap()).toEqual({ 'x-user': 'ann' });
  });

  it('cuts an attempt at perTryTimeout and retries it on the other pod', async () => {
    const stuck: (() => void)[] = [];
    echo.behave = (_call, callback, pod) => {
      if (pod !== '127.0.0.4') return false;
      // Never answers while the test runs; released at the end.
      stuck.push(() => fail(callback, status.UNAVAILABLE, 'late'));
      return true;
    };
    const { client } = await reviewsClient(
      '{ address: 127.0.0.4 }, { address: 127.0.0.5 }',
      '',
      `  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
    retries: { attempts: 2, perTryTimeout: 100ms, retryOn: "reset,unavailable" }`,
    );
    const start = echo.received.length;
    const outcomes = await many(client, 4);
    expect(pods(outcomes)).toEqual(Array(4).fill('127.0.0.5'));
    expect(echo.received.slice(start).filter((r) => r.pod === '127.0.0.4').length).toBeGreaterThan(0);
    for (const release of stuck) release();
  });

  it('does not retry a status retryOn does not name', async () => {
    echo.behave = (_call, callback, pod) => (pod === '127.0.0.4' ? fail(callback, status.INTERNAL, 'bug') : false);
    const { client } = await reviewsClient(
      '{ address: 127.0.0.4 }, { address: 127.0.0.5 }',
      '',
      `  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
    retries: { attempts: 2, retryOn: unavailable }`,
    );
    const answered = pods(await many(client, 4));
    expect(answered.filter((p) => p === `error ${status.INTERNAL}`).length).toBe(2);
    expect(answered.filter((p) => p === '127.0.0.5').length).toBe(2);
  });

  it('a killed pod costs no client-visible error (connect failure retried under the default policy)', async () => {
    echo.behave = undefined;
    const { client } = await reviewsClient(
      '{ address: 127.0.0.5 }, { address: 127.0.0.6 }',
      '',
      '  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]',
    );
    expect(new Set(pods(await many(client, 4)))).toEqual(new Set(['127.0.0.5', '127.0.0.6']));
    echo.kill('127.0.0.6');
    expect(pods(await many(client, 10))).toEqual(Array(10).fill('127.0.0.5'));
  });

  it('ejects a pod answering UNAVAILABLE (a gateway error), and later calls avoid it', async () => {
    echo.behave = (_call, callback, pod) => (pod === '127.0.0.4' ? fail(callback, status.UNAVAILABLE, 'overloaded') : false);
    const { mesh, client } = await reviewsClient(
      '{ address: 127.0.0.4 }, { address: 127.0.0.5 }',
      '    outlierDetection: { consecutiveGatewayErrors: 1, consecutive5xxErrors: 0, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100 }',
      `  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
    retries: { attempts: 0 }`,
    );
    const ejected: string[] = [];
    mesh.on('ejection', (e) => {
      if (e.action === 'eject') ejected.push(e.endpoint);
    });
    const answered = pods(await many(client, 12));
    expect(ejected).toEqual([`127.0.0.4:${echo.port}`]);
    expect(answered.filter((p) => p === `error ${status.UNAVAILABLE}`).length).toBe(1);
    expect(answered.slice(answered.indexOf(`error ${status.UNAVAILABLE}`) + 1).every((p) => p === '127.0.0.5')).toBe(true);
  });
});
