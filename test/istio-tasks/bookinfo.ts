import type { Mesh } from '../../src/index.js';
import type { PodReply } from '../helpers/pods.js';

/**
 * Bookinfo's services as the Istio tasks deploy them, each Kubernetes Service written as a
 * ServiceEntry with STATIC loopback "pods" labelled like the sample's Deployments.
 * reviews v1/v2/v3 are 127.0.0.2/.3/.4, ratings v1 is 127.0.0.5, details v1 is 127.0.0.6.
 */
export const BOOKINFO_PODS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'] as const;
export const REVIEWS_V1 = '127.0.0.2';
export const REVIEWS_V2 = '127.0.0.3';
export const REVIEWS_V3 = '127.0.0.4';
export const RATINGS_V1 = '127.0.0.5';

export function bookinfoServices(port: number, namespace = 'default'): string {
  const service = (name: string, endpoints: string) => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  hosts: [${name}.${namespace}.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: ${endpoints}
---
`;
  return (
    service(
      'reviews',
      `[{ address: ${REVIEWS_V1}, labels: { app: reviews, version: v1 } }, { address: ${REVIEWS_V2}, labels: { app: reviews, version: v2 } }, { address: ${REVIEWS_V3}, labels: { app: reviews, version: v3 } }]`,
    ) +
    service('ratings', `[{ address: ${RATINGS_V1}, labels: { app: ratings, version: v1 } }]`) +
    service('details', `[{ address: 127.0.0.6, labels: { app: details, version: v1 } }]`)
  );
}

/**
 * samples/bookinfo/networking/destination-rule-all.yaml (the reviews, ratings and details rules),
 * verbatim: https://github.com/istio/istio/blob/master/samples/bookinfo/networking/destination-rule-all.yaml
 */
export const DESTINATION_RULE_ALL = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
spec:
  host: reviews
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v3
    labels:
      version: v3
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
  - name: v2-mysql
    labels:
      version: v2-mysql
  - name: v2-mysql-vm
    labels:
      version: v2-mysql-vm
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: details
spec:
  host: details
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
`;

/**
 * samples/bookinfo/networking/virtual-service-all-v1.yaml (reviews, ratings, details), verbatim:
 * https://github.com/istio/istio/blob/master/samples/bookinfo/networking/virtual-service-all-v1.yaml
 */
export const VIRTUAL_SERVICE_ALL_V1 = `apiVersion: networking.istio.io/v1
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
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts:
  - ratings
  http:
  - route:
    - destination:
        host: ratings
        subset: v1
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: details
spec:
  hosts:
  - details
  http:
  - route:
    - destination:
        host: details
        subset: v1
`;

/** One request through the mesh: status, headers, body, and the pod's reply when a pod answered. */
export async function call(mesh: Mesh, url: string, headers: Record<string, string> = {}) {
  const res = await mesh.request(url, { headers });
  const text = await res.body.text();
  const reply = res.headers['content-type'] === 'application/json' ? (JSON.parse(text) as PodReply) : undefined;
  return { status: res.statusCode, headers: res.headers, text, reply };
}

/** How many of `n` calls each pod answered (every call expected to be a 200). */
export async function tally(mesh: Mesh, url: string, n: number, headers: Record<string, string> = {}): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const { status, reply, text } = await call(mesh, url, headers);
    if (status !== 200 || !reply) throw new Error(`call ${i} answered ${status}: ${text}`);
    counts.set(reply.pod, (counts.get(reply.pod) ?? 0) + 1);
  }
  return counts;
}
