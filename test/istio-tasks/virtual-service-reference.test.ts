// The VirtualService reference's examples, verbatim but for the pods' port:
// https://istio.io/latest/docs/reference/config/networking/virtual-service/
// (the opening reviews-route example, HTTPMatchRequest, HTTPRedirect, HTTPDirectResponse,
// HTTPRewrite and its uriRegexRewrite). reviews and ratings live in `prod` on loopback pods.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { call } from './bookinfo.js';

const REVIEWS_V1 = '127.0.0.2';
const REVIEWS_V2 = '127.0.0.3';
const RATINGS_V1 = '127.0.0.4';

const services = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: prod }
spec:
  hosts: [reviews.prod.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: ${REVIEWS_V1}, labels: { version: v1 } }, { address: ${REVIEWS_V2}, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: prod }
spec:
  hosts: [ratings.prod.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: ${RATINGS_V1}, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: prod }
spec:
  host: reviews.prod.svc.cluster.local
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: prod }
spec:
  host: ratings.prod.svc.cluster.local
  subsets: [{ name: v1, labels: { version: v1 } }]
---
`;

let pods: Pods;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start([REVIEWS_V1, REVIEWS_V2, RATINGS_V1]);
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const start = (vs: string) => meshFromYaml(services(pods.port) + vs, { namespace: 'prod', dns: false });
const reviews = (path: string) => `http://reviews.prod.svc.cluster.local:${pods.port}${path}`;
const ratings = (path: string) => `http://ratings.prod.svc.cluster.local:${pods.port}${path}`;

describe('VirtualService reference examples', () => {
  it('reviews-route: /wpcatalog and /consumercatalog go to v2 rewritten to /newcatalog; the rest to v1', async () => {
    mesh = await start(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-route
  namespace: prod
spec:
  hosts:
  - reviews.prod.svc.cluster.local
  http:
  - name: "reviews-v2-routes"
    match:
    - uri:
        prefix: "/wpcatalog"
    - uri:
        prefix: "/consumercatalog"
    rewrite:
      uri: "/newcatalog"
    route:
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v2
  - name: "reviews-v1-route"
    route:
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v1
`);
    const wp = await call(mesh, reviews('/wpcatalog/books?page=1'));
    expect(wp.reply).toMatchObject({ pod: REVIEWS_V2, path: '/newcatalog/books?page=1' });
    const consumer = await call(mesh, reviews('/consumercatalog'));
    expect(consumer.reply).toMatchObject({ pod: REVIEWS_V2, path: '/newcatalog' });
    const other = await call(mesh, reviews('/other'));
    expect(other.reply).toMatchObject({ pod: REVIEWS_V1, path: '/other' });
  });

  it('HTTPMatchRequest: end-user jason and a /ratings/v2/ prefix, ignoring URI case; both conditions needed', async () => {
    mesh = await start(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
  namespace: prod
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - match:
    - headers:
        end-user:
          exact: jason
      uri:
        prefix: "/ratings/v2/"
      ignoreUriCase: true
    route:
    - destination:
        host: ratings.prod.svc.cluster.local
`);
    expect((await call(mesh, ratings('/RATINGS/V2/1'), { 'end-user': 'jason' })).reply?.pod).toBe(RATINGS_V1);
    expect((await call(mesh, ratings('/ratings/v2/1'), { 'end-user': 'jason' })).reply?.pod).toBe(RATINGS_V1);
    // No route matches: Envoy's 404 (route not found).
    expect((await call(mesh, ratings('/ratings/v2/1'))).status).toBe(404);
    expect((await call(mesh, ratings('/ratings/v1/1'), { 'end-user': 'jason' })).status).toBe(404);
  });

  it('HTTPRedirect: 301 to /v1/bookRatings on newratings.default.svc.cluster.local', async () => {
    mesh = await start(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
  namespace: prod
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - match:
    - uri:
        exact: /v1/getProductRatings
    redirect:
      uri: /v1/bookRatings
      authority: newratings.default.svc.cluster.local
`);
    const res = await call(mesh, ratings('/v1/getProductRatings'));
    expect(res.status).toBe(301);
    expect(res.headers.location).toBe('http://newratings.default.svc.cluster.local/v1/bookRatings');
  });

  it('HTTPDirectResponse: 503 "unknown error" without reaching ratings', async () => {
    mesh = await start(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
  namespace: prod
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - match:
    - uri:
        exact: /v1/getProductRatings
    directResponse:
      status: 503
      body:
        string: "unknown error"
`);
    const res = await call(mesh, ratings('/v1/getProductRatings'));
    expect(res.status).toBe(503);
    expect(res.text).toBe('unknown error');
  });

  it('HTTPRewrite: /ratings is rewritten to /v1/bookRatings before reaching ratings v1', async () => {
    mesh = await start(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
  namespace: prod
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - match:
    - uri:
        prefix: /ratings
    rewrite:
      uri: /v1/bookRatings
    route:
    - destination:
        host: ratings.prod.svc.cluster.local
        subset: v1
`);
    expect((await call(mesh, ratings('/ratings/7'))).reply).toMatchObject({ pod: RATINGS_V1, path: '/v1/bookRatings/7' });
  });

  it('uriRegexRewrite: /service/{name}/{rest} becomes /{rest}/instance/{name}', async () => {
    mesh = await start(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings-route
  namespace: prod
spec:
  hosts:
  - ratings.prod.svc.cluster.local
  http:
  - match:
    - uri:
        prefix: /service
    rewrite:
      uriRegexRewrite:
        match: ^/service/([^/]+)(/.*)$
        rewrite: \\2/instance/\\1
    route:
    - destination:
        host: ratings.prod.svc.cluster.local
`);
    expect((await call(mesh, ratings('/service/foo/v1/api'))).reply?.path).toBe('/v1/api/instance/foo');
  });
});
