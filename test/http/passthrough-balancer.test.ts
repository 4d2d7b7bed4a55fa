import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';

// localhost (127.0.0.1) is what the caller asks for; the ServiceEntry's endpoint is 127.0.0.2.
let pods: Pods;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.1', '127.0.0.2']);
});
afterAll(() => pods.close());

const config = (simple: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: local, namespace: shop }
spec:
  hosts: [localhost]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: local, namespace: shop }
spec:
  # A short name would mean localhost.shop.svc.cluster.local: the wildcard covers localhost.
  host: "*"
  trafficPolicy: { loadBalancer: { simple: ${simple} } }
`;

describe('loadBalancer.simple: PASSTHROUGH', () => {
  it('connects to the address the caller asked for instead of balancing over the endpoints', async () => {
    for (const [simple, pod] of [
      ['ROUND_ROBIN', '127.0.0.2'],
      ['PASSTHROUGH', '127.0.0.1'],
    ] as const) {
      const mesh = await meshFromYaml(config(simple), { namespace: 'shop', dns: false });
      try {
        const res = await mesh.request(`http://localhost:${pods.port}/`);
        expect(res.statusCode).toBe(200);
        expect(((await res.body.json()) as PodReply).pod).toBe(pod);
      } finally {
        await mesh.close();
      }
    }
  });
});
