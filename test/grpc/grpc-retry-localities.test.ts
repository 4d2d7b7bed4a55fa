import { credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, EchoClient, fail, GrpcPods } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const insecure = credentials.createInsecure();

describe('gRPC retries across localities (retryRemoteLocalities, Envoy previous_priorities)', () => {
  let pods: GrpcPods;
  const meshes: Mesh[] = [];
  const clients: EchoClient[] = [];

  /** The caller is in region1/zone1: .2 there is priority 0; .3 in region2 is the failover. */
  const localities = (port: number, retries: string): string => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: grpc, protocol: GRPC }]
  endpoints:
  - { address: 127.0.0.2, locality: region1/zone1 }
  - { address: 127.0.0.3, locality: region2/zone2 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  # outlierDetection turns locality failover on (ejection itself is off here).
  trafficPolicy: { outlierDetection: { consecutive5xxErrors: 0, consecutiveGatewayErrors: 0 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
    retries: ${retries}
`;

  const client = async (retries: string): Promise<EchoClient> => {
    const mesh = await meshFromYaml(localities(pods.port, retries), { namespace: 'shop', dns: false, locality: 'region1/zone1' });
    meshes.push(mesh);
    const c = new EchoClient(`mesh:///reviews.shop:${pods.port}`, insecure, meshGrpcOptions(mesh));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    pods = await GrpcPods.start(['127.0.0.2', '127.0.0.3']);
    pods.behave = (_call, callback, pod) => (pod === '127.0.0.2' ? fail(callback, status.UNAVAILABLE, 'local pod overloaded') : false);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const m of meshes) await m.close();
    await pods?.close();
  });

  it('without it, retries stay in the local locality', async () => {
    const local = await client('{ attempts: 2, retryOn: unavailable }');
    const start = pods.received.length;
    for (let i = 0; i < 3; i++) {
      const outcome = await callEcho(local);
      expect(outcome.ok ? outcome.reply.pod : outcome.code).toBe(status.UNAVAILABLE);
    }
    // Every attempt (3 per call) went to the local pod.
    expect(pods.received.slice(start).map((r) => r.pod)).toEqual(Array(9).fill('127.0.0.2'));
  });

  it('with it, a retry goes to the other locality and answers', async () => {
    const remote = await client('{ attempts: 2, retryOn: unavailable, retryRemoteLocalities: true }');
    const start = pods.received.length;
    for (let i = 0; i < 3; i++) {
      const outcome = await callEcho(remote);
      expect(outcome.ok ? outcome.reply.pod : outcome.code).toBe('127.0.0.3');
    }
    expect(pods.received.slice(start).map((r) => r.pod)).toEqual(Array(3).fill(['127.0.0.2', '127.0.0.3']).flat());
  });
});
