import { afterEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { explain, meshFromYaml } from '../helpers/mesh-from-yaml.js';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

const endpointsOf = (m: Mesh, url: string) =>
  explain(m, 'GET', url).destinations[0]?.endpoints.map((e) => `${e.key} w${e.weight} ${e.locality.region}/${e.locality.zone}`);

describe('ServiceEntry endpoints', () => {
  it('maps each service port to the endpoint port by name, then targetPort, then the port itself', async () => {
    mesh = await meshFromYaml(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  location: MESH_INTERNAL
  resolution: STATIC
  ports:
  - { number: 80, name: http, protocol: HTTP }
  - { number: 81, name: admin, protocol: HTTP, targetPort: 9901 }
  - { number: 82, name: plain, protocol: HTTP }
  endpoints:
  - { address: 127.0.0.2, ports: { http: 8080 }, weight: 3, locality: us-east1/a }
  - { address: 127.0.0.3, ports: { http: 8081 } }
`,
      { namespace: 'shop' },
    );
    expect(endpointsOf(mesh, 'http://api.example.com/')).toEqual(['127.0.0.2:8080 w3 us-east1/a', '127.0.0.3:8081 w1 /']);
    expect(endpointsOf(mesh, 'http://api.example.com:81/')).toEqual(['127.0.0.2:9901 w3 us-east1/a', '127.0.0.3:9901 w1 /']);
    expect(endpointsOf(mesh, 'http://api.example.com:82/')).toEqual(['127.0.0.2:82 w3 us-east1/a', '127.0.0.3:82 w1 /']);
  });

  it('selects WorkloadEntries of its own namespace by workloadSelector', async () => {
    mesh = await meshFromYaml(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  workloadSelector: { labels: { app: ratings } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-1, namespace: shop }
spec: { address: 127.0.0.8, labels: { app: ratings }, locality: eu/z1 }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: vm-2, namespace: shop }
spec: { address: 127.0.0.9, labels: { app: ratings }, ports: { http: 9999 } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: other-app, namespace: shop }
spec: { address: 127.0.0.10, labels: { app: details } }
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: other-namespace, namespace: web }
spec: { address: 127.0.0.11, labels: { app: ratings } }
`,
      { namespace: 'shop' },
    );
    expect(endpointsOf(mesh, 'http://ratings:9080/')).toEqual(['127.0.0.8:9080 w1 eu/z1', '127.0.0.9:9999 w1 /']);
  });

  it('resolution DNS without endpoints uses the host itself', async () => {
    mesh = await meshFromYaml(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: shop }
spec:
  hosts: [api.partner.test]
  resolution: DNS
  ports: [{ number: 443, name: https, protocol: HTTPS }]
`,
      { namespace: 'shop' },
    );
    expect(endpointsOf(mesh, 'https://api.partner.test/')).toEqual(['api.partner.test:443 w1 /']);
  });

  it('prefers the caller namespace entry when two namespaces declare a host, and warns', async () => {
    const se = (ns: string, address: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext, namespace: ${ns} }
spec:
  hosts: [api.partner.test]
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints: [{ address: ${address} }]
---`;
    mesh = await meshFromYaml(se('other', '127.0.0.2') + se('shop', '127.0.0.3'), { namespace: 'shop' });
    expect(endpointsOf(mesh, 'http://api.partner.test/')).toEqual(['127.0.0.3:80 w1 /']);
    expect(mesh.snapshot.warnings.some((w) => w.code === 'conflicting-service-entry' && w.resource?.namespace === 'other')).toBe(true);
  });

  it('subset labels choose the endpoints a destination can use', async () => {
    mesh = await meshFromYaml(
      `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v2, track: canary } }
  - { address: 127.0.0.4, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets:
  - { name: canary, labels: { version: v2, track: canary } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: canary } }] }]
`,
      { namespace: 'shop' },
    );
    expect(endpointsOf(mesh, 'http://reviews:9080/')).toEqual(['127.0.0.3:9080 w1 /']);
  });
});
