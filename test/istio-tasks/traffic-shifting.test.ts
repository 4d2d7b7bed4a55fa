// Istio task "Traffic Shifting": https://istio.io/latest/docs/tasks/traffic-management/traffic-shifting/
// YAML: samples/bookinfo/networking/virtual-service-all-v1.yaml, virtual-service-reviews-50-v3.yaml
// and virtual-service-reviews-v3.yaml, verbatim.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { BOOKINFO_PODS, DESTINATION_RULE_ALL, REVIEWS_V1, REVIEWS_V3, VIRTUAL_SERVICE_ALL_V1, bookinfoServices, tally } from './bookinfo.js';

const REVIEWS_50_V3 = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v1
      weight: 50
    - destination:
        host: reviews
        subset: v3
      weight: 50
`;

const REVIEWS_V3_ONLY = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts:
    - reviews
  http:
  - route:
    - destination:
        host: reviews
        subset: v3
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
const start = (vs: string) =>
  meshFromYaml(bookinfoServices(pods.port) + DESTINATION_RULE_ALL + '---\n' + vs, { namespace: 'default', random: seededRandom(11) });

describe('Istio task: Traffic Shifting', () => {
  it('virtual-service-all-v1: all traffic on reviews v1', async () => {
    mesh = await start(VIRTUAL_SERVICE_ALL_V1);
    expect(await tally(mesh, reviews(), 50)).toEqual(new Map([[REVIEWS_V1, 50]]));
  });

  it('virtual-service-reviews-50-v3: half to v1, half to v3 (50% ±3 points over 4,000 requests), none to v2', async () => {
    mesh = await start(REVIEWS_50_V3);
    const counts = await tally(mesh, reviews(), 4_000);
    expect(counts.get('127.0.0.3')).toBeUndefined();
    expect((counts.get(REVIEWS_V1) ?? 0) + (counts.get(REVIEWS_V3) ?? 0)).toBe(4_000);
    expect(Math.abs((counts.get(REVIEWS_V3) ?? 0) / 40 - 50)).toBeLessThanOrEqual(3);
  }, 60_000);

  it('virtual-service-reviews-v3: all traffic on reviews v3 (a single destination needs no weight)', async () => {
    mesh = await start(REVIEWS_V3_ONLY);
    expect(await tally(mesh, reviews(), 50)).toEqual(new Map([[REVIEWS_V3, 50]]));
  });
});
