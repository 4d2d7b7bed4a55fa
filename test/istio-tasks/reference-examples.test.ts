// The reference pages' YAML examples, verbatim but for addresses and ports (loopback pods):
// ServiceEntry  https://istio.io/latest/docs/reference/config/networking/service-entry/
// WorkloadEntry https://istio.io/latest/docs/reference/config/networking/workload-entry/
// DestinationRule https://istio.io/latest/docs/reference/config/networking/destination-rule/
// DNS names resolve through a real dnsmasq.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { UnknownHostError } from '../../src/index.js';
import { dnsOptions } from '../helpers/dns-mesh.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { call, tally } from './bookinfo.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

const PODS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];

let pods: Pods;
let dns: Dnsmasq;
let mesh: Mesh | undefined;
beforeAll(async () => {
  pods = await Pods.start(PODS);
  dns = await Dnsmasq.start({
    hosts: {
      'us.foo.bar.com': ['127.0.0.2'],
      'uk.foo.bar.com': ['127.0.0.3'],
      'in.foo.bar.com': ['127.0.0.4'],
      'vm1.vpc01.corp.net': ['127.0.0.6'],
      'example.com': ['127.0.0.5'],
    },
  });
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});
afterAll(async () => {
  await dns?.close();
  await pods?.close();
});

describe('ServiceEntry reference', () => {
  it('external-svc-dns: foo.bar.com:80 is served by three DNS-named endpoints, each on its own port', async () => {
    const config = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-dns
spec:
  hosts:
  - foo.bar.com
  location: MESH_EXTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
  resolution: DNS
  endpoints:
  - address: us.foo.bar.com
    ports:
      http: ${pods.port}
  - address: uk.foo.bar.com
    ports:
      http: ${pods.port}
  - address: in.foo.bar.com
    ports:
      http: ${pods.port}
`;
    mesh = await meshFromYaml(config, { namespace: 'default', dns: dnsOptions(dns) });
    const counts = await tally(mesh, 'http://foo.bar.com/', 30);
    expect([...counts.keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    // The Host the endpoints see is the service's, not the endpoint's name.
    expect((await call(mesh, 'http://foo.bar.com/')).reply?.host).toBe('foo.bar.com');
  });
});

describe('ServiceEntry reference: exportTo', () => {
  const config = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: external-svc-httpbin
  namespace : egress
spec:
  hosts:
  - example.com
  exportTo:
  - "."
  location: MESH_EXTERNAL
  ports:
  - number: ${port}
    name: http
    protocol: HTTP
  resolution: DNS
`;

  it('external-svc-httpbin, exported to "." only: reachable from the egress namespace, outside the registry elsewhere', async () => {
    mesh = await meshFromYaml(config(pods.port), { namespace: 'egress', dns: dnsOptions(dns), outboundTrafficPolicy: 'REGISTRY_ONLY' });
    expect((await call(mesh, `http://example.com:${pods.port}/`)).reply?.pod).toBe('127.0.0.5');
    await mesh.close();
    mesh = await meshFromYaml(config(pods.port), { namespace: 'default', dns: dnsOptions(dns), outboundTrafficPolicy: 'REGISTRY_ONLY' });
    await expect(call(mesh, `http://example.com:${pods.port}/`)).rejects.toBeInstanceOf(UnknownHostError);
  });
});

describe('WorkloadEntry reference', () => {
  it('details-svc: the ServiceEntry selects the VM by label and sends port 80 to targetPort', async () => {
    const config = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: details-svc
spec:
  serviceAccount: details-legacy
  address: 127.0.0.5
  labels:
    app: details-legacy
    instance-id: vm1
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: details-svc
spec:
  hosts:
  - details.bookinfo.com
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: ${pods.port}
  resolution: STATIC
  workloadSelector:
    labels:
      app: details-legacy
`;
    mesh = await meshFromYaml(config, { namespace: 'default', dns: false });
    expect(await tally(mesh, 'http://details.bookinfo.com/details/0', 5)).toEqual(new Map([['127.0.0.5', 5]]));
  });

  it('details-svc by DNS name: a WorkloadEntry address that is a host name, with resolution DNS', async () => {
    const config = `apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata:
  name: details-svc
spec:
  serviceAccount: details-legacy
  address: vm1.vpc01.corp.net
  labels:
    app: details-legacy
    instance-id: vm1
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: details-svc
spec:
  hosts:
  - details.bookinfo.com
  location: MESH_INTERNAL
  ports:
  - number: 80
    name: http
    protocol: HTTP
    targetPort: ${pods.port}
  resolution: DNS
  workloadSelector:
    labels:
      app: details-legacy
`;
    mesh = await meshFromYaml(config, { namespace: 'default', dns: dnsOptions(dns) });
    expect(await tally(mesh, 'http://details.bookinfo.com/details/0', 5)).toEqual(new Map([['127.0.0.6', 5]]));
  });
});

describe('DestinationRule reference', () => {
  const ratings = (port: number) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: prod }
spec:
  hosts: [ratings.prod.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v3 } }
  - { address: 127.0.0.4, labels: { version: v3 } }
---
`;

  it('bookinfo-ratings: subset testversion (version v3) overrides the LEAST_REQUEST policy with ROUND_ROBIN', async () => {
    const config = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bookinfo-ratings
  namespace: prod
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
  subsets:
  - name: testversion
    labels:
      version: v3
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: prod }
spec:
  hosts: [ratings.prod.svc.cluster.local]
  http: [{ route: [{ destination: { host: ratings.prod.svc.cluster.local, subset: testversion } }] }]
`;
    mesh = await meshFromYaml(ratings(pods.port) + config, { namespace: 'prod', dns: false });
    const order: string[] = [];
    for (let i = 0; i < 10; i++) order.push((await call(mesh, `http://ratings.prod.svc.cluster.local:${pods.port}/`)).reply!.pod);
    // Only v3 pods, strictly alternating (round robin).
    expect(new Set(order)).toEqual(new Set(['127.0.0.3', '127.0.0.4']));
    for (let i = 1; i < order.length; i++) expect(order[i]).not.toBe(order[i - 1]);
  });

  it('consistentHash httpCookie user: every request with the same cookie goes to the same pod', async () => {
    const config = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: bookinfo-ratings
  namespace: prod
spec:
  host: ratings.prod.svc.cluster.local
  trafficPolicy:
    loadBalancer:
      consistentHash:
        httpCookie:
          name: user
          ttl: 0s
`;
    mesh = await meshFromYaml(ratings(pods.port) + config, { namespace: 'prod', dns: false });
    const seenBy = new Map<string, Set<string>>();
    for (let u = 0; u < 20; u++) {
      for (let i = 0; i < 5; i++) {
        const pod = (await call(mesh, `http://ratings.prod.svc.cluster.local:${pods.port}/`, { cookie: `user=u${u}` })).reply!.pod;
        seenBy.set(`u${u}`, (seenBy.get(`u${u}`) ?? new Set()).add(pod));
      }
    }
    for (const set of seenBy.values()) expect(set.size).toBe(1);
    // Different users land on different pods.
    expect(new Set([...seenBy.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
  });
});
