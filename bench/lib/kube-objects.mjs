// Kubernetes objects of the kube-scale benches: Service svc-i (port 9080), one EndpointSlice of
// ENDPOINTS endpoints per service, their Pods' metadata, 30 Nodes in three zones.

/** Endpoint k of service i, generation g: unique loopback addresses. */
export const addressOf = (i, k, g = 0) => `127.${1 + g * 5 + Math.floor(i / 250)}.${i % 250}.${k + 2}`;

export function serviceObject(i) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: `svc-${i}`, namespace: 'shop' },
    spec: { selector: { app: `svc-${i}` }, ports: [{ name: 'http', port: 9080, targetPort: 'web' }] },
  };
}

export function sliceObject(i, port, endpoints, g = 0) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    addressType: 'IPv4',
    metadata: { name: `svc-${i}-abcde`, namespace: 'shop', labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    ports: [{ name: 'http', port, protocol: 'TCP' }],
    endpoints: Array.from({ length: endpoints }, (_, k) => ({
      addresses: [addressOf(i, k, g)],
      conditions: { ready: true, serving: true, terminating: false },
      nodeName: `node-${(i + k) % 30}`,
      zone: `zone-${(i + k) % 3}`,
      targetRef: { kind: 'Pod', name: `svc-${i}-${g}-${k}`, namespace: 'shop' },
    })),
  };
}

/** A Pod as the API stores it (the mesh asks for its metadata only). */
export const podObject = (i, k, g = 0, kind = 'Pod') => ({
  apiVersion: kind === 'Pod' ? 'v1' : 'meta.k8s.io/v1',
  kind,
  metadata: { name: `svc-${i}-${g}-${k}`, namespace: 'shop', labels: { app: `svc-${i}`, version: k % 3 === 2 ? 'v2' : 'v1', 'pod-template-hash': `h${g}` } },
});

export const nodeObject = (n) => ({
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: `node-${n}`, labels: { 'topology.kubernetes.io/region': 'region-1', 'topology.kubernetes.io/zone': `zone-${n % 3}` } },
});
