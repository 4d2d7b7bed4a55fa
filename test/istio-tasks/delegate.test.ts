// VirtualService delegation, the reference's example verbatim (names, namespaces, hosts kept):
// https://istio.io/latest/docs/reference/config/networking/virtual-service/#Delegate
// Adapted: namespaces nsA and nsB are written nsa and nsb (in hosts too), as Kubernetes rejects
// upper case in a namespace name and so does sidecarless (a test below shows the error). The
// services are loopback ServiceEntries. The root VirtualService binds to `mygateway`, so a
// sidecar (and this in-process mesh) does not apply it; the second case binds it to `mesh`.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { call } from './bookinfo.js';

const PRODUCTPAGE_V1 = '127.0.0.2';
const PRODUCTPAGE = '127.0.0.3';
const REVIEWS = '127.0.0.4';
const BOOKINFO_COM = '127.0.0.5';

const services = (port: number) => {
  const se = (name: string, namespace: string, host: string, address: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  hosts: [${host}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: ${address} }]
---
`;
  return (
    se('productpage-v1', 'nsa', 'productpage-v1.nsa.svc.cluster.local', PRODUCTPAGE_V1) +
    se('productpage', 'nsa', 'productpage.nsa.svc.cluster.local', PRODUCTPAGE) +
    se('reviews', 'nsb', 'reviews.nsb.svc.cluster.local', REVIEWS) +
    se('bookinfo', 'default', 'bookinfo.com', BOOKINFO_COM)
  );
};

const ROOT = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bookinfo
spec:
  hosts:
  - "bookinfo.com"
  gateways:
  - mygateway
  http:
  - match:
    - uri:
        prefix: "/productpage"
    delegate:
       name: productpage
       namespace: nsa
  - match:
    - uri:
        prefix: "/reviews"
    delegate:
        name: reviews
        namespace: nsb
`;
const DELEGATES = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: productpage
  namespace: nsa
spec:
  http:
  - match:
     - uri:
        prefix: "/productpage/v1/"
    route:
    - destination:
        host: productpage-v1.nsa.svc.cluster.local
  - route:
    - destination:
        host: productpage.nsa.svc.cluster.local
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: nsb
spec:
  http:
  - route:
    - destination:
        host: reviews.nsb.svc.cluster.local
`;

let pods: Pods;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start([PRODUCTPAGE_V1, PRODUCTPAGE, REVIEWS, BOOKINFO_COM]);
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await pods.close();
});

const url = (path: string) => `http://bookinfo.com:${pods.port}${path}`;

describe('VirtualService reference: Delegate', () => {
  it('verbatim, bound to mygateway only: not applied to sidecar traffic; bookinfo.com answers itself', async () => {
    mesh = await meshFromYaml(services(pods.port) + ROOT + '---\n' + DELEGATES, { namespace: 'default' });
    for (const path of ['/productpage', '/productpage/v1/x', '/reviews/1']) {
      expect((await call(mesh, url(path))).reply?.pod).toBe(BOOKINFO_COM);
    }
  });

  it('bound to mesh: /productpage/v1/ goes to productpage-v1, other /productpage paths to productpage, /reviews to nsb reviews', async () => {
    const root = ROOT.replace('  - mygateway\n', '  - mesh\n');
    mesh = await meshFromYaml(services(pods.port) + root + '---\n' + DELEGATES, { namespace: 'default' });
    expect((await call(mesh, url('/productpage/v1/books'))).reply?.pod).toBe(PRODUCTPAGE_V1);
    expect((await call(mesh, url('/productpage'))).reply?.pod).toBe(PRODUCTPAGE);
    expect((await call(mesh, url('/productpage/v2'))).reply?.pod).toBe(PRODUCTPAGE);
    expect((await call(mesh, url('/reviews/1'))).reply?.pod).toBe(REVIEWS);
    // Matched by neither root route: no route of the VirtualService, Envoy answers 404.
    const unmatched = await call(mesh, url('/details'));
    expect(unmatched.status).toBe(404);
  });

  it('the verbatim namespace nsA is rejected with the resource and field named', async () => {
    const verbatim = DELEGATES.replace(/nsa/g, 'nsA');
    await expect(meshFromYaml(services(pods.port) + ROOT + '---\n' + verbatim, { namespace: 'default' })).rejects.toThrow(
      /VirtualService nsA\/productpage: metadata\.namespace: expected a namespace of at most 63 lowercase letters/,
    );
  });
});
