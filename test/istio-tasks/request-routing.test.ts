// Istio task "Request Routing": https://istio.io/latest/docs/tasks/traffic-management/request-routing/
// YAML: samples/bookinfo/networking/virtual-service-all-v1.yaml, destination-rule-all.yaml and
// virtual-service-reviews-test-v2.yaml, verbatim; Bookinfo's pods are loopback addresses.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { BOOKINFO_PODS, DESTINATION_RULE_ALL, REVIEWS_V1, REVIEWS_V2, VIRTUAL_SERVICE_ALL_V1, bookinfoServices, call, tally } from './bookinfo.js';

/** samples/bookinfo/networking/virtual-service-reviews-test-v2.yaml */
const REVIEWS_TEST_V2 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - match:
    - headers:
        end-user:
          exact: jason
    route:
    - destination:
        host: reviews
        subset: v2
  - route:
    - destination:
        host: reviews
        subset: v1
`;

let pods: Pods;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start(BOOKINFO_PODS);
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const reviews = () => `http://reviews:${pods.port}/reviews/0`;

describe('Istio task: Request Routing', () => {
  it('without a VirtualService, reviews answers from every version (round robin over v1, v2, v3)', async () => {
    mesh = await meshFromYaml(bookinfoServices(pods.port), { namespace: 'default' });
    const counts = await tally(mesh, reviews(), 30);
    expect([...counts.keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it('virtual-service-all-v1: every request goes to reviews v1, however often the page is refreshed', async () => {
    mesh = await meshFromYaml(bookinfoServices(pods.port) + DESTINATION_RULE_ALL + '---\n' + VIRTUAL_SERVICE_ALL_V1, { namespace: 'default' });
    expect(await tally(mesh, reviews(), 30)).toEqual(new Map([[REVIEWS_V1, 30]]));
    // The short name, the namespaced name and the FQDN are the same service.
    for (const host of ['reviews.default', 'reviews.default.svc', 'reviews.default.svc.cluster.local']) {
      expect((await call(mesh, `http://${host}:${pods.port}/`)).reply?.pod).toBe(REVIEWS_V1);
    }
  });

  it('virtual-service-reviews-test-v2: user jason sees reviews v2, everyone else v1', async () => {
    mesh = await meshFromYaml(bookinfoServices(pods.port) + DESTINATION_RULE_ALL + '---\n' + REVIEWS_TEST_V2, { namespace: 'default' });
    expect(await tally(mesh, reviews(), 20, { 'end-user': 'jason' })).toEqual(new Map([[REVIEWS_V2, 20]]));
    expect(await tally(mesh, reviews(), 20)).toEqual(new Map([[REVIEWS_V1, 20]]));
    expect(await tally(mesh, reviews(), 10, { 'end-user': 'someone-else' })).toEqual(new Map([[REVIEWS_V1, 10]]));
    // Header names match case-insensitively, values exactly.
    expect(await tally(mesh, reviews(), 5, { 'End-User': 'jason' })).toEqual(new Map([[REVIEWS_V2, 5]]));
    expect(await tally(mesh, reviews(), 5, { 'end-user': 'Jason' })).toEqual(new Map([[REVIEWS_V1, 5]]));
  });
});
