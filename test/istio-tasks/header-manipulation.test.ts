// Header manipulation, the VirtualService reference's "Headers" example, verbatim but for the host:
// https://istio.io/latest/docs/reference/config/networking/virtual-service/#Headers
// "set test: true on requests to reviews; remove foo from responses of the v1 destination only".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';

const V1 = '127.0.0.2';
const V2 = '127.0.0.3';
const config = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: prod }
spec:
  hosts: [reviews.prod.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: ${V1}, labels: { version: v1 } }
  - { address: ${V2}, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: prod }
spec:
  host: reviews.prod.svc.cluster.local
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews-route
  namespace: prod
spec:
  hosts:
  - reviews.prod.svc.cluster.local
  http:
  - headers:
      request:
        set:
          test: "true"
    route:
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v2
      weight: 25
    - destination:
        host: reviews.prod.svc.cluster.local
        subset: v1
      headers:
        response:
          remove:
          - foo
      weight: 75
`;

let pods: Pods;
let log: RequestLog;
let mesh: Mesh;
beforeAll(async () => {
  pods = await Pods.start([V1, V2]);
  log = new RequestLog(pods);
  // Every pod answers with a `foo` header and says who it is.
  log.take = (seen) => {
    seen.res.writeHead(200, { foo: 'bar', 'x-pod': seen.pod }).end(seen.pod);
    return true;
  };
  mesh = await meshFromYaml(config(pods.port), { namespace: 'prod', random: seededRandom(4) });
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
});

describe('VirtualService reference: Headers', () => {
  it('sets test: true on every request, replacing a value the caller sent', async () => {
    for (let i = 0; i < 20; i++) {
      const res = await mesh.request(`http://reviews.prod.svc.cluster.local:${pods.port}/`, { headers: { test: 'false' } });
      await res.body.dump();
    }
    expect(log.seen).toHaveLength(20);
    for (const s of log.seen) expect(s.headers.test).toBe('true');
  });

  it('removes foo only from v1 responses; v2 responses keep it; the split is 25/75 (±3 points over 2,000)', async () => {
    const counts = { [V1]: 0, [V2]: 0 };
    for (let i = 0; i < 2_000; i++) {
      const res = await mesh.request(`http://reviews.prod.svc.cluster.local:${pods.port}/`);
      const pod = await res.body.text();
      if (pod === V1) expect(res.headers.foo).toBeUndefined();
      else expect(res.headers.foo).toBe('bar');
      counts[pod as typeof V1]++;
    }
    expect(counts[V1] + counts[V2]).toBe(2_000);
    expect(Math.abs(counts[V2] / 20 - 25)).toBeLessThanOrEqual(3);
  }, 60_000);
});
