import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { explain, meshFromYaml } from '../helpers/mesh-from-yaml.js';

const yaml = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
  hosts: [api]
  http:
  - name: exact-uri
    match: [{ uri: { exact: /exact } }]
    route: [{ destination: { host: exact } }]
  - name: any-case
    match: [{ uri: { prefix: /CaSe }, ignoreUriCase: true }]
    route: [{ destination: { host: any-case } }]
  - name: regex-uri
    match: [{ uri: { regex: "/items/[0-9]+" } }]
    route: [{ destination: { host: regex } }]
  - name: header-and-method
    match: [{ method: { exact: POST }, headers: { x-tenant: { prefix: acme } } }]
    route: [{ destination: { host: tenant } }]
  - name: presence-or-query
    match:
    - headers: { x-debug: {} }
    - queryParams: { debug: { exact: "1" } }
    route: [{ destination: { host: debug } }]
  - name: without-header
    match: [{ uri: { prefix: /beta }, withoutHeaders: { x-stable: { exact: "yes" } } }]
    route: [{ destination: { host: beta } }]
  - name: port-and-authority
    match: [{ port: 8443, authority: { regex: "api(\\\\.shop)?(:8443)?" } }]
    route: [{ destination: { host: secure } }]
  - name: source-labels
    match: [{ sourceLabels: { app: frontend }, uri: { prefix: /mine } }]
    route: [{ destination: { host: mine } }]
  - name: source-namespace
    match: [{ sourceNamespace: other, uri: { prefix: /mine } }]
    route: [{ destination: { host: never } }]
  - name: split
    match: [{ uri: { prefix: /split } }]
    route:
    - { destination: { host: a }, weight: 80 }
    - { destination: { host: b }, weight: 20 }
  - name: default
    route: [{ destination: { host: fallback } }]
  - name: unreachable
    route: [{ destination: { host: unreachable } }]
`;

let mesh: Mesh;
beforeAll(async () => {
  mesh = await meshFromYaml(yaml, { namespace: 'shop', labels: { app: 'frontend' } });
});
afterAll(() => mesh.close());

const routeName = (method: string, url: string, headers: Record<string, string> = {}) => explain(mesh, method, url, headers).route?.name;

describe('VirtualService http matching', () => {
  it('matches uri exact only on the whole path', () => {
    expect(routeName('GET', 'http://api/exact')).toBe('exact-uri');
    expect(routeName('GET', 'http://api/exact/more')).toBe('default');
  });

  it('ignores the query string when matching the path', () => {
    expect(routeName('GET', 'http://api/exact?x=1')).toBe('exact-uri');
  });

  it('applies ignoreUriCase to prefixes', () => {
    expect(routeName('GET', 'http://api/case/x')).toBe('any-case');
    expect(routeName('GET', 'http://api/CASE')).toBe('any-case');
  });

  it('matches a regex against the whole path (RE2 full match)', () => {
    expect(routeName('GET', 'http://api/items/42')).toBe('regex-uri');
    expect(routeName('GET', 'http://api/items/42/reviews')).toBe('default');
    expect(routeName('GET', 'http://api/v1/items/42')).toBe('default');
  });

  it('ANDs conditions inside one match entry', () => {
    expect(routeName('POST', 'http://api/t', { 'x-tenant': 'acme-eu' })).toBe('header-and-method');
    expect(routeName('GET', 'http://api/t', { 'x-tenant': 'acme-eu' })).toBe('default');
    expect(routeName('POST', 'http://api/t', { 'x-tenant': 'other' })).toBe('default');
  });

  it('ORs match entries, with empty header match meaning presence', () => {
    expect(routeName('GET', 'http://api/d', { 'x-debug': '' })).toBe('presence-or-query');
    expect(routeName('GET', 'http://api/d?debug=1')).toBe('presence-or-query');
    expect(routeName('GET', 'http://api/d?debug=2')).toBe('default');
  });

  it('matches header names case-insensitively', () => {
    expect(routeName('POST', 'http://api/t', { 'X-Tenant': 'acme' })).toBe('header-and-method');
  });

  it('withoutHeaders excludes requests carrying the header value', () => {
    expect(routeName('GET', 'http://api/beta')).toBe('without-header');
    expect(routeName('GET', 'http://api/beta', { 'x-stable': 'no' })).toBe('without-header');
    expect(routeName('GET', 'http://api/beta', { 'x-stable': 'yes' })).toBe('default');
  });

  it('matches the port the caller addressed and the authority', () => {
    expect(routeName('GET', 'http://api:8443/')).toBe('port-and-authority');
    expect(routeName('GET', 'http://api:8080/')).toBe('default');
  });

  it('evaluates sourceLabels and sourceNamespace against the mesh own workload', () => {
    const e = explain(mesh, 'GET', 'http://api/mine');
    expect(e.route?.name).toBe('source-labels');
    expect(e.matchedConditions).toContain('sourceLabels app=frontend');
  });

  it('first matching entry wins; a catch-all makes later entries unreachable', () => {
    expect(routeName('GET', 'http://api/anything')).toBe('default');
  });

  it('reports weighted destinations as shares', () => {
    const e = explain(mesh, 'GET', 'http://api/split');
    expect(e.destinations.map((d) => [d.host, d.percent])).toEqual([
      ['a.shop.svc.cluster.local', 80],
      ['b.shop.svc.cluster.local', 20],
    ]);
  });
});

describe('delegate VirtualServices', () => {
  const delegated = `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: root, namespace: shop }
spec:
  hosts: [gateway-api]
  http:
  - match: [{ uri: { prefix: /reviews } }]
    delegate: { name: reviews-routes, namespace: team }
  - match: [{ uri: { prefix: /missing } }]
    delegate: { name: nope }
  - route: [{ destination: { host: fallback } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews-routes, namespace: team }
spec:
  http:
  - name: v2-only
    match: [{ uri: { prefix: /reviews/v2 } }]
    route: [{ destination: { host: reviews-v2 } }]
  - name: conflicting
    match: [{ uri: { prefix: /ratings } }]
    route: [{ destination: { host: never } }]
  - name: rest
    route: [{ destination: { host: reviews } }]
`;
  let m: Mesh;
  beforeAll(async () => {
    m = await meshFromYaml(delegated, { namespace: 'shop' });
  });
  afterAll(() => m.close());

  it('adds the delegate routes under the root match, hosts read in the delegate namespace', () => {
    const e = explain(m, 'GET', 'http://gateway-api/reviews/v2/1');
    expect(e.route?.name).toBe('v2-only');
    expect(e.route?.resource.name).toBe('reviews-routes');
    expect(e.destinations[0]?.host).toBe('reviews-v2.team.svc.cluster.local');
    expect(explain(m, 'GET', 'http://gateway-api/reviews/1').route?.name).toBe('rest');
  });

  it('drops delegate routes that contradict the root match', () => {
    expect(explain(m, 'GET', 'http://gateway-api/ratings').destinations[0]?.host).toBe('fallback.shop.svc.cluster.local');
  });

  it('warns about a delegate that does not exist', () => {
    const w = m.snapshot.warnings.find((i) => i.code === 'missing-delegate');
    expect(w?.path).toBe('spec.http[1].delegate');
    expect(w?.message).toContain('shop/nope');
  });
});
