import { Buffer } from 'node:buffer';
import { credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, GrpcPods } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

// Gateway API GRPCRoute attached to a Service (GAMMA) routes grpc-js calls made through the mesh,
// as it routes any other request to the Service: 127.0.0.2 is reviews-v1, .3 reviews-v2.
const serviceEntry = (name: string, port: number, address: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: ${address} }]
---
`;

describe('GRPCRoute for grpc-js clients (mesh:/// targets)', () => {
  let echo: GrpcPods;
  let mesh: Mesh;
  const clients: EchoClient[] = [];

  beforeAll(async () => {
    echo = await GrpcPods.start(['127.0.0.2', '127.0.0.3']);
    const port = echo.port;
    mesh = await meshFromYaml(
      `${serviceEntry('reviews', port, '127.0.0.2')}${serviceEntry('reviews-v1', port, '127.0.0.2')}${serviceEntry('reviews-v2', port, '127.0.0.3')}apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: { name: reviews, namespace: shop }
spec:
  parentRefs: [{ group: "", kind: Service, name: reviews, port: ${port} }]
  rules:
  - matches: [{ method: { service: test.Echo, method: Other } }]
    backendRefs: [{ name: reviews-v2, port: ${port} }]
  - matches: [{ method: { service: test.Echo, method: Who } }]
    backendRefs: [{ name: reviews-v1, port: ${port} }]
  - matches: [{ method: { service: test.Echo, method: Who }, headers: [{ name: x-tier, value: gold }] }]
    backendRefs: [{ name: reviews-v2, port: ${port} }]
`,
      { namespace: 'shop', random: seededRandom(3) },
    );
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await mesh.close();
    await echo.close();
  });

  const client = (): EchoClient => {
    const c = new EchoClient(`mesh:///reviews.shop:${echo.port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
    clients.push(c);
    return c;
  };

  it('routes by gRPC method and metadata to the backendRef of the most specific matching rule (Gateway API precedence, not list order)', async () => {
    const c = client();
    const who = await callEcho(c, 'who');
    const other = await callEcho(c, 'other');
    const gold = await callEcho(c, 'who', { 'x-tier': 'gold' });
    expect(who.ok && who.reply.pod).toBe('127.0.0.2');
    expect(other.ok && other.reply.pod).toBe('127.0.0.3');
    expect(gold.ok && gold.reply.pod).toBe('127.0.0.3');
  });

  it('answers a method no rule matches with UNIMPLEMENTED (Envoy: route not found), reaching no pod', async () => {
    const c = new EchoClient(`mesh:///reviews.shop:${echo.port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
    clients.push(c);
    const before = echo.received.length;
    // A GRPCRoute that matches only some methods of the Service: others have no route.
    const unmatched = await new Promise<{ code: number | undefined; details: string | undefined }>((resolve) => {
      c.makeUnaryRequest(
        '/test.Other/Nothing',
        (v: unknown) => Buffer.from(JSON.stringify(v)),
        (b: Buffer) => JSON.parse(b.toString()) as unknown,
        {},
        (error) => resolve({ code: error?.code, details: error?.details }),
      );
    });
    expect(unmatched.code).toBe(status.UNIMPLEMENTED);
    // The mesh's answer, not the pod's (a grpc-js server answers an unknown method UNIMPLEMENTED too).
    expect(unmatched.details).toBe('route not found for /test.Other/Nothing on reviews.shop.svc.cluster.local');
    expect(echo.received.length).toBe(before);
  });
});
