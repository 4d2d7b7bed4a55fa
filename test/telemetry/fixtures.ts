import type { Mesh, MeshOptions } from '../../src/index.js';
import { seededRandom } from '../../src/clock.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

/** `reviews` on two pods (round robin), with a VirtualService `http` rule given as YAML. */
export function reviews(port: number, http: string, options: { readonly hedgeAfter?: string; readonly extra?: string } = {}): string {
  return `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2, labels: { app: reviews, version: v1 } }, { address: 127.0.0.3, labels: { app: reviews, version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
${options.hedgeAfter ? `  annotations: { sidecarless.io/hedge-after: ${options.hedgeAfter} }\n` : ''}spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
${http}
${options.extra ?? ''}`;
}

export async function meshOf(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  return meshFromYaml(yaml, { namespace: 'shop', random: seededRandom(7), dns: false, ...options });
}
