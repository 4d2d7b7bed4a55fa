import { afterEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { explain, meshFromYaml } from '../helpers/mesh-from-yaml.js';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

const dr = (ns: string, name: string, host: string, lb: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: ${ns} }
spec:
  host: ${host}
  trafficPolicy: { loadBalancer: { simple: ${lb} } }${extra}
---`;

const policyOf = (m: Mesh, url: string) => explain(m, 'GET', url).destinations[0];

describe('DestinationRule lookup order', () => {
  const all = [
    dr('istio-system', 'mesh-wide', '"*.svc.cluster.local"', 'RANDOM'),
    dr('shop', 'service-ns', 'reviews', 'LEAST_REQUEST'),
    dr('web', 'client-ns', 'reviews.shop.svc.cluster.local', 'ROUND_ROBIN'),
  ];

  it('uses the caller namespace first', async () => {
    mesh = await meshFromYaml(all.join('\n'), { namespace: 'web' });
    const d = policyOf(mesh, 'http://reviews.shop/');
    expect(d?.destinationRules.map((r) => r.name)).toEqual(['client-ns']);
    expect(d?.trafficPolicy).toEqual({ loadBalancer: { simple: 'ROUND_ROBIN' } });
  });

  it('then the service namespace', async () => {
    mesh = await meshFromYaml(all.slice(0, 2).join('\n'), { namespace: 'web' });
    expect(policyOf(mesh, 'http://reviews.shop/')?.trafficPolicy).toEqual({ loadBalancer: { simple: 'LEAST_REQUEST' } });
  });

  it('then the root namespace', async () => {
    mesh = await meshFromYaml(all.slice(0, 1).join('\n'), { namespace: 'web' });
    expect(policyOf(mesh, 'http://reviews.shop.svc.cluster.local/')?.destinationRules.map((r) => r.name)).toEqual(['mesh-wide']);
  });

  it('a configured root namespace replaces istio-system', async () => {
    mesh = await meshFromYaml(dr('mesh-config', 'mesh-wide', '"*.svc.cluster.local"', 'RANDOM'), { namespace: 'web', rootNamespace: 'mesh-config' });
    expect(policyOf(mesh, 'http://reviews.shop.svc.cluster.local/')?.trafficPolicy).toEqual({ loadBalancer: { simple: 'RANDOM' } });
  });

  it('skips rules not exported to the caller', async () => {
    mesh = await meshFromYaml(dr('shop', 'private', 'reviews', 'RANDOM').replace('spec:\n', 'spec:\n  exportTo: ["."]\n'), { namespace: 'web' });
    expect(policyOf(mesh, 'http://reviews.shop/')?.destinationRules).toEqual([]);
  });
});

describe('several DestinationRules for one host in one namespace', () => {
  it('are merged: the oldest top-level policy wins, subsets are added, duplicates warned', async () => {
    const yaml = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: first, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
  subsets:
  - { name: v1, labels: { version: v1 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: second, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: RANDOM } }
  subsets:
  - { name: v1, labels: { version: other } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v2 } }
  - { address: 127.0.0.4, labels: { version: other } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - { destination: { host: reviews, subset: v1 }, weight: 50 }
    - { destination: { host: reviews, subset: v2 }, weight: 50 }
`;
    mesh = await meshFromYaml(yaml, { namespace: 'shop' });
    const [v1, v2] = explain(mesh, 'GET', 'http://reviews/').destinations;
    expect(v1?.trafficPolicy).toEqual({ loadBalancer: { simple: 'ROUND_ROBIN' } });
    expect(v1?.endpoints.map((e) => e.address)).toEqual(['127.0.0.2']);
    expect(v2?.endpoints.map((e) => e.address)).toEqual(['127.0.0.3']);
    const codes = mesh.snapshot.warnings.map((w) => `${w.code} ${w.resource?.name} ${w.path}`);
    expect(codes).toContain('conflicting-destination-rule second spec.host');
    expect(codes).toContain('duplicate-subset second spec.subsets[0].name');
  });

  it('a rule whose workloadSelector matches the caller applies instead of the namespace rule', async () => {
    const yaml = [
      dr('web', 'general', 'reviews.shop.svc.cluster.local', 'RANDOM'),
      dr('web', 'for-frontend', 'reviews.shop.svc.cluster.local', 'LEAST_REQUEST', '\n  workloadSelector: { matchLabels: { app: frontend } }'),
    ].join('\n');
    mesh = await meshFromYaml(yaml, { namespace: 'web', labels: { app: 'frontend' } });
    expect(policyOf(mesh, 'http://reviews.shop.svc.cluster.local/')?.trafficPolicy).toEqual({ loadBalancer: { simple: 'LEAST_REQUEST' } });
    await mesh.close();
    mesh = await meshFromYaml(yaml, { namespace: 'web', labels: { app: 'backend' } });
    expect(policyOf(mesh, 'http://reviews.shop.svc.cluster.local/')?.trafficPolicy).toEqual({ loadBalancer: { simple: 'RANDOM' } });
  });
});

describe('traffic policy merging', () => {
  it('goes top level < port level < subset < subset port level, replacing whole sections', async () => {
    const yaml = `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    connectionPool: { tcp: { maxConnections: 100 } }
    portLevelSettings:
    - port: { number: 9080 }
      loadBalancer: { simple: RANDOM }
  subsets:
  - name: v1
    labels: { version: v1 }
    trafficPolicy:
      connectionPool: { http: { http1MaxPendingRequests: 7 } }
  - name: v2
    labels: { version: v2 }
    trafficPolicy:
      portLevelSettings:
      - port: { number: 9080 }
        outlierDetection: { consecutive5xxErrors: 3 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - match: [{ headers: { v: { exact: "1" } } }]
    route: [{ destination: { host: reviews, subset: v1 } }]
  - match: [{ headers: { v: { exact: "2" } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
  - route: [{ destination: { host: reviews } }]
`;
    mesh = await meshFromYaml(yaml, { namespace: 'shop' });
    // Port-level settings do not inherit: connectionPool falls back to defaults on port 9080.
    expect(policyOf(mesh, 'http://reviews:9080/')?.trafficPolicy).toEqual({ loadBalancer: { simple: 'RANDOM' } });
    expect(policyOf(mesh, 'http://reviews:8080/')?.trafficPolicy).toEqual({
      loadBalancer: { simple: 'ROUND_ROBIN' },
      connectionPool: { tcp: { maxConnections: 100 } },
    });
    expect(explain(mesh, 'GET', 'http://reviews:9080/', { v: '1' }).destinations[0]?.trafficPolicy).toEqual({
      loadBalancer: { simple: 'RANDOM' },
      connectionPool: { http: { http1MaxPendingRequests: 7 } },
    });
    expect(explain(mesh, 'GET', 'http://reviews:9080/', { v: '2' }).destinations[0]?.trafficPolicy).toEqual({
      outlierDetection: { consecutive5xxErrors: 3 },
    });
  });
});

describe('cross-resource checks', () => {
  it('warns about a route to a subset no DestinationRule defines, naming the field and line', async () => {
    const yaml = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, subset: v9 }
`;
    mesh = await meshFromYaml(`${yaml}---\n${dr('shop', 'reviews', 'reviews', 'RANDOM')}`, { namespace: 'shop' });
    const warning = mesh.snapshot.warnings.find((w) => w.code === 'missing-subset');
    expect(warning?.path).toBe('spec.http[0].route[0].destination.subset');
    expect(warning?.message).toContain('subset "v9" is not defined by DestinationRule shop/reviews');
    expect(explain(mesh, 'GET', 'http://reviews/').destinations[0]?.endpointsNote).toContain('503');
  });
});
