import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, GrpcPods } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const PODS = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];

describe('DestinationRule consistentHash on gRPC metadata', () => {
  let pods: GrpcPods;
  let mesh: Mesh;
  let client: EchoClient;

  beforeAll(async () => {
    pods = await GrpcPods.start(PODS);
    mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: carts, namespace: shop }
spec:
  hosts: [carts.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: grpc, protocol: GRPC }]
  endpoints: [${PODS.map((a) => `{ address: ${a} }`).join(', ')}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: carts, namespace: shop }
spec:
  host: carts.shop.svc.cluster.local
  trafficPolicy:
    loadBalancer: { consistentHash: { httpHeaderName: x-user } }
`,
      { namespace: 'shop' },
    );
    client = new EchoClient(`mesh:///carts.shop:${pods.port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
  });
  afterAll(async () => {
    client.close();
    await pods.close();
    await mesh.close();
  });

  it('calls with the same x-user metadata go to the same pod; different users spread over the pods', async () => {
    const home = new Map<string, Set<string>>();
    for (let round = 0; round < 4; round++) {
      for (let user = 0; user < 12; user++) {
        const outcome = await callEcho(client, 'who', { 'x-user': `user-${user}` });
        expect(outcome.ok).toBe(true);
        if (!outcome.ok) continue;
        const key = `user-${user}`;
        if (!home.has(key)) home.set(key, new Set());
        home.get(key)!.add(outcome.reply.pod);
      }
    }
    for (const [, seen] of home) expect(seen.size).toBe(1);
    const used = new Set([...home.values()].flatMap((s) => [...s]));
    expect(used.size).toBeGreaterThan(1);
  });

  it('a call without the metadata key is still answered (a random pick, as Envoy)', async () => {
    const outcome = await callEcho(client);
    expect(outcome.ok).toBe(true);
  });
});
