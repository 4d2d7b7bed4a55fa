import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { credentials, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, GrpcPods } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { TestClock } from '../helpers/test-clock.js';
import type { TestTimer } from '../helpers/test-clock.js';

const insecure = credentials.createInsecure();

/** A "pod" that accepts TCP connections and never says a word: no HTTP/2 settings, nothing. */
async function silentPod(address: string, port: number): Promise<{ server: Server; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, resolve);
  });
  return { server, sockets };
}

function resources(port: number, endpoints: readonly string[], retries: string): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: echo, namespace: shop }
spec:
  hosts: [echo.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC }]
  endpoints: [${endpoints.map((a) => `{ address: ${a}, labels: { pod: "${a}" } }`).join(', ')}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: echo, namespace: shop }
spec:
  hosts: [echo.shop.svc.cluster.local]
  http:
  - name: warm-up
    match: [{ headers: { x-pod: { exact: 127.0.0.2 } } }]
    route: [{ destination: { host: echo.shop.svc.cluster.local, subset: two } }]
  - name: all
    retries: ${retries}
    route: [{ destination: { host: echo.shop.svc.cluster.local } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: echo, namespace: shop }
spec:
  host: echo.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    connectionPool: { tcp: { connectTimeout: 3s } }
  subsets: [{ name: two, labels: { pod: 127.0.0.2 } }]
`;
}

const connectTimer = (timer: TestTimer): boolean => timer.delayMs === 3000;

describe('gRPC connections time out as the DestinationRule says (tcp.connectTimeout)', () => {
  let echo: GrpcPods;
  let silent: { server: Server; sockets: Socket[] };
  const meshes: Mesh[] = [];
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    echo = await GrpcPods.start(['127.0.0.2']);
    silent = await silentPod('127.0.0.3', echo.port);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const m of meshes.splice(0)) await m.close();
  });
  afterAll(async () => {
    for (const s of silent.sockets) s.destroy();
    await new Promise((resolve) => silent.server.close(resolve));
    await echo.close();
  });

  it('a call to a pod that accepts connections and never answers fails over to another pod once the connect timeout passes', async () => {
    // Back-offs run at once; the connect timer only when the test moves time.
    const clock = new TestClock({ auto: (timer) => timer.kind === 'request' });
    const mesh = await meshFromYaml(resources(echo.port, ['127.0.0.2', '127.0.0.3'], '{ attempts: 2, retryOn: connect-failure }'), { clock });
    meshes.push(mesh);
    const client = new EchoClient('mesh:///echo.shop:' + echo.port, insecure, meshGrpcOptions(mesh));
    clients.push(client);
    // The good pod's connection first (through a route to it alone), so that the only connection
    // ever waited for is the silent pod's.
    expect(await callEcho(client, 'who', { 'x-pod': '127.0.0.2' })).toMatchObject({ ok: true });
    const pods: string[] = [];
    for (let i = 0; i < 4; i++) {
      const call = callEcho(client);
      // Round robin sends every other call to the silent pod first; its connection never comes up.
      const outcome = await Promise.race([call, clock.until(connectTimer).then(() => undefined)]);
      if (outcome === undefined) clock.advance(3000);
      const result = await call;
      expect(result.ok, JSON.stringify(result)).toBe(true);
      if (result.ok) pods.push(result.reply.pod);
    }
    expect(pods).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.2']);
    // The silent pod was tried: its connections were made and never answered.
    expect(silent.sockets.length).toBeGreaterThan(0);
  });

  it('without retries the call fails with UNAVAILABLE naming the pod and the connect timeout', async () => {
    const clock = new TestClock();
    const mesh = await meshFromYaml(resources(echo.port, ['127.0.0.3'], '{ attempts: 0 }'), { clock });
    meshes.push(mesh);
    const client = new EchoClient('mesh:///echo.shop:' + echo.port, insecure, meshGrpcOptions(mesh));
    clients.push(client);
    const call = callEcho(client);
    await clock.until(connectTimer);
    clock.advance(3000);
    const result = await call;
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.code).toBe(status.UNAVAILABLE);
      expect(result.details).toContain(`upstream connect error: 127.0.0.3:${echo.port}: connect timeout`);
      expect(result.details).toContain('3000 ms');
    }
  });
});
