import { afterEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { destinations, explain, meshFromYaml } from '../helpers/mesh-from-yaml.js';

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

const vs = (ns: string, name: string, host: string, dest: string, extra = '') => `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns}${extra} }
spec:
  hosts: [${host}]
  http:
  - route:
    - destination: { host: ${dest} }
---`;

describe('short host names', () => {
  it('are read relative to the namespace of the resource that wrote them, not the caller', async () => {
    mesh = await meshFromYaml(vs('shop', 'reviews', 'reviews', 'reviews-v2'), { namespace: 'web' });
    const e = explain(mesh, 'GET', 'http://reviews.shop:9080/');
    expect(e.request.host).toBe('reviews.shop.svc.cluster.local');
    expect(destinations(e)).toEqual(['reviews-v2.shop.svc.cluster.local 100%']);
  });

  it('resolve the caller-side name through the caller namespace search path', async () => {
    mesh = await meshFromYaml(vs('shop', 'reviews', 'reviews', 'reviews'), { namespace: 'shop' });
    for (const url of ['http://reviews:9080/', 'http://reviews.shop:9080/', 'http://reviews.shop.svc:9080/', 'http://reviews.shop.svc.cluster.local:9080/']) {
      expect(explain(mesh, 'GET', url).virtualService?.name, url).toBe('reviews');
    }
    // From another namespace, `reviews` is that namespace's service: no route applies.
    await mesh.close();
    mesh = await meshFromYaml(vs('shop', 'reviews', 'reviews', 'reviews'), { namespace: 'web' });
    expect(explain(mesh, 'GET', 'http://reviews:9080/').virtualService).toBeUndefined();
  });

  it('honour a configured cluster domain', async () => {
    mesh = await meshFromYaml(vs('shop', 'reviews', 'reviews', 'reviews'), { namespace: 'shop', clusterDomain: 'corp.internal' });
    expect(explain(mesh, 'GET', 'http://reviews/').request.host).toBe('reviews.shop.svc.corp.internal');
  });
});

describe('exportTo', () => {
  it('hides a resource exported to its own namespace from callers elsewhere', async () => {
    const yaml = vs('shop', 'reviews', 'reviews', 'reviews-v2').replace('spec:\n', 'spec:\n  exportTo: ["."]\n');
    mesh = await meshFromYaml(yaml, { namespace: 'web' });
    expect(explain(mesh, 'GET', 'http://reviews.shop/').virtualService).toBeUndefined();
    await mesh.close();
    mesh = await meshFromYaml(yaml, { namespace: 'shop' });
    expect(explain(mesh, 'GET', 'http://reviews.shop/').virtualService?.name).toBe('reviews');
  });

  it('shows a resource to the namespaces it names; ~ (nobody) is refused, as istiod refuses it outside ServiceEntries', async () => {
    const named = vs('shop', 'reviews', 'reviews', 'reviews-v2').replace('spec:\n', 'spec:\n  exportTo: [web]\n');
    mesh = await meshFromYaml(named, { namespace: 'web' });
    expect(explain(mesh, 'GET', 'http://reviews.shop/').virtualService?.name).toBe('reviews');
    await mesh.close();
    mesh = await meshFromYaml(named, { namespace: 'other' });
    expect(explain(mesh, 'GET', 'http://reviews.shop/').virtualService).toBeUndefined();
    await mesh.close();
    mesh = undefined;
    await expect(meshFromYaml(named.replace('[web]', '["~"]'), { namespace: 'shop' })).rejects.toThrow(
      'spec.exportTo[0]: exportTo ~ (none) is not allowed for Istio configuration objects',
    );
  });
});

describe('several VirtualServices for one host', () => {
  it('prefer the one private to the caller namespace, then the oldest, and warn about the rest', async () => {
    const yaml = [
      vs('team-b', 'public-old', 'reviews.shop.svc.cluster.local', 'from-public-old', ', creationTimestamp: "2024-01-01T00:00:00Z"'),
      vs('web', 'private', 'reviews.shop.svc.cluster.local', 'from-private', ', creationTimestamp: "2025-01-01T00:00:00Z"').replace(
        'spec:\n',
        'spec:\n  exportTo: ["."]\n',
      ),
    ].join('\n');
    mesh = await meshFromYaml(yaml, { namespace: 'web' });
    expect(destinations(explain(mesh, 'GET', 'http://reviews.shop/'))).toEqual(['from-private.web.svc.cluster.local 100%']);
    const warning = mesh.snapshot.warnings.find((w) => w.code === 'conflicting-virtual-service');
    expect(warning?.resource).toEqual({ kind: 'VirtualService', namespace: 'team-b', name: 'public-old' });
    expect(warning?.message).toContain('web/private');
  });

  it('among equally visible ones, the oldest wins', async () => {
    const yaml = [
      vs('a', 'newer', 'reviews.shop.svc.cluster.local', 'newer', ', creationTimestamp: "2025-06-01T00:00:00Z"'),
      vs('b', 'older', 'reviews.shop.svc.cluster.local', 'older', ', creationTimestamp: "2024-06-01T00:00:00Z"'),
    ].join('\n');
    mesh = await meshFromYaml(yaml, { namespace: 'web' });
    expect(destinations(explain(mesh, 'GET', 'http://reviews.shop/'))).toEqual(['older.b.svc.cluster.local 100%']);
  });

  it('ignore VirtualServices bound only to gateways', async () => {
    const yaml = vs('shop', 'ingress', 'reviews', 'x').replace('spec:\n', 'spec:\n  gateways: [shop-gateway]\n');
    mesh = await meshFromYaml(yaml, { namespace: 'shop' });
    expect(explain(mesh, 'GET', 'http://reviews/').virtualService).toBeUndefined();
  });

  it('an exact host beats a wildcard, and the longest wildcard wins', async () => {
    const yaml = [
      vs('shop', 'any', '"*.example.com"', 'any.example.com'),
      vs('shop', 'api', '"*.api.example.com"', 'api.example.com'),
      vs('shop', 'exact', 'v1.api.example.com', 'exact.example.com'),
    ].join('\n');
    mesh = await meshFromYaml(yaml, { namespace: 'shop' });
    expect(explain(mesh, 'GET', 'http://v1.api.example.com/').virtualService?.name).toBe('exact');
    expect(explain(mesh, 'GET', 'http://v2.api.example.com/').virtualService?.name).toBe('api');
    expect(explain(mesh, 'GET', 'http://www.example.com/').virtualService?.name).toBe('any');
    expect(explain(mesh, 'GET', 'http://example.com/').virtualService).toBeUndefined();
  });
});

describe('Sidecar egress', () => {
  it('limits what the caller sees to the hosts it imports', async () => {
    const yaml = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: web }
spec:
  egress:
  - hosts: ["./*", "istio-system/*", "shop/ratings.shop.svc.cluster.local"]
---
${vs('shop', 'reviews', 'reviews', 'reviews')}
${vs('shop', 'ratings', 'ratings', 'ratings')}
${vs('web', 'frontend', 'frontend', 'frontend')}`;
    mesh = await meshFromYaml(yaml, { namespace: 'web' });
    expect(explain(mesh, 'GET', 'http://reviews.shop/').virtualService).toBeUndefined();
    expect(explain(mesh, 'GET', 'http://ratings.shop/').virtualService?.name).toBe('ratings');
    expect(explain(mesh, 'GET', 'http://frontend/').virtualService?.name).toBe('frontend');
  });

  it('uses the root namespace default when the caller namespace has none', async () => {
    const yaml = `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: istio-system }
spec:
  egress:
  - hosts: ["./*"]
---
${vs('shop', 'reviews', 'reviews', 'reviews')}`;
    mesh = await meshFromYaml(yaml, { namespace: 'web' });
    expect(explain(mesh, 'GET', 'http://reviews.shop/').virtualService).toBeUndefined();
  });
});
