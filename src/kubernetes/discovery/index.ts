export { KubernetesEndpointSource, isForbidden } from './kubernetes-endpoint-source.js';
export type { KubernetesDiscoveryNote, KubernetesEndpointSourceEvents, KubernetesEndpointSourceOptions } from './kubernetes-endpoint-source.js';
export { parseServiceHost } from './service-host.js';
export type { KubeServiceRef } from './service-host.js';
export { serving, sliceEndpoints } from './slice-endpoints.js';
export type { ServiceEndpoints, SliceContext } from './slice-endpoints.js';
export { servicePortProtocol } from './port-protocol.js';
