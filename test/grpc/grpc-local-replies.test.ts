import { credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, GrpcPods } from '../helpers/grpc-pods.js';
import type { Outcome } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { isRequestTimer, TestClock } from '../helpers/test-clock.js';

// What the route layers HTTP requests pass answer for a grpc-js call, as Envoy answers a gRPC
// request locally: a direct response, a redirect, a fault delay (and the mesh closing meanwhile).
const config = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - match: [{ headers: { x-reply: { exact: direct } } }]
    directResponse: { status: 503, body: { string: down for maintenance } }
    headers: { response: { set: { x-maintenance: "yes" } } }
  - match: [{ headers: { x-reply: { exact: redirect } } }]
    redirect: { uri: /test.Echo/Other }
  - match: [{ headers: { x-fault: { exact: delay } } }]
    fault: { delay: { fixedDelay: 5s, percentage: { value: 100 } } }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
`;

const failed = (outcome: Outcome) => {
  if (outcome.ok) throw new Error(`expected a failed call, the pod ${outcome.reply.pod} answered`);
  return outcome;
};

describe('local replies of the shared route layers to grpc-js calls', () => {
  let echo: GrpcPods;
  const meshes: Mesh[] = [];
  const clients: EchoClient[] = [];

  const start = async (clock?: TestClock): Promise<Mesh> => {
    const mesh = await meshFromYaml(config(echo.port), { namespace: 'shop', dns: false, ...(clock ? { clock } : {}) });
    meshes.push(mesh);
    return mesh;
  };
  const client = (mesh: Mesh): EchoClient => {
    const c = new EchoClient(`mesh:///reviews.shop:${echo.port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    echo = await GrpcPods.start(['127.0.0.2']);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    for (const m of meshes) await m.close();
    await echo.close();
  });

  it("a directResponse: its HTTP status as gRPC maps it (503: UNAVAILABLE), the body as details, the route's response headers as metadata; no pod called", async () => {
    const c = client(await start());
    const before = echo.received.length;
    const outcome = failed(await callEcho(c, 'who', { 'x-reply': 'direct' }));
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.details).toBe('down for maintenance');
    expect(outcome.metadata.get('x-maintenance')).toEqual(['yes']);
    expect(echo.received.length).toBe(before);
  });

  it('a redirect, which a gRPC call cannot follow: UNKNOWN, naming the method and service; no pod called', async () => {
    const c = client(await start());
    const before = echo.received.length;
    const outcome = failed(await callEcho(c, 'who', { 'x-reply': 'redirect' }));
    expect(outcome.code).toBe(status.UNKNOWN);
    expect(outcome.details).toBe('the route for /test.Echo/Who on reviews.shop.svc.cluster.local redirects, which a gRPC call cannot follow');
    expect(echo.received.length).toBe(before);
  });

  it('a fault delay holds the call until it has passed, then sends it', async () => {
    const clock = new TestClock();
    const c = client(await start(clock));
    const before = echo.received.length;
    const pending = callEcho(c, 'who', { 'x-fault': 'delay' });
    const delay = await clock.until((t) => isRequestTimer(t) && t.delayMs === 5000);
    expect(echo.received.length).toBe(before);
    clock.runNext((t) => t === delay);
    const outcome = await pending;
    expect(outcome.ok && outcome.reply.pod).toBe('127.0.0.2');
    expect(echo.received.length).toBe(before + 1);
  });

  it('a call waiting out a fault delay when the mesh closes fails at once with ERR_MESH_CLOSED, never sent', async () => {
    const clock = new TestClock();
    const mesh = await start(clock);
    const c = client(mesh);
    const before = echo.received.length;
    const pending = callEcho(c, 'who', { 'x-fault': 'delay' });
    await clock.until((t) => isRequestTimer(t) && t.delayMs === 5000);
    const closed = mesh.close();
    const outcome = failed(await pending);
    expect(outcome.code).toBe(status.UNAVAILABLE);
    expect(outcome.metadata.get('x-sidecarless-error-code')).toEqual(['ERR_MESH_CLOSED']);
    await closed;
    await vi.waitFor(() => expect(clock.waiting.filter((t) => t.delayMs === 5000)).toEqual([]));
    expect(echo.received.length).toBe(before);
  });
});
