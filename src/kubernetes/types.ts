/**
 * The few fields of core Kubernetes objects that endpoint discovery reads, as the API serves them
 * (JSON). Ours, not `@kubernetes/client-node`'s, so nothing at runtime depends on the client.
 */
import type { KubeObject, KubeResourceType } from './collection.js';

/** discovery.k8s.io/v1 `EndpointConditions`: nil `ready`/`serving` mean true, nil `terminating` false. */
export interface KubeEndpointConditions {
  readonly ready?: boolean;
  readonly serving?: boolean;
  readonly terminating?: boolean;
}

export interface KubeObjectReference {
  readonly kind?: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly uid?: string;
}

/** discovery.k8s.io/v1 `Endpoint`. */
export interface KubeSliceEndpoint {
  readonly addresses: readonly string[];
  readonly conditions?: KubeEndpointConditions;
  readonly hostname?: string;
  readonly nodeName?: string;
  readonly zone?: string;
  readonly targetRef?: KubeObjectReference;
}

/** discovery.k8s.io/v1 `EndpointPort`: `port` is the pod's port (the Service's target port resolved). */
export interface KubeSlicePort {
  readonly name?: string;
  readonly port?: number;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface KubeEndpointSlice extends KubeObject {
  readonly addressType: 'IPv4' | 'IPv6' | 'FQDN';
  readonly endpoints?: readonly KubeSliceEndpoint[] | null;
  readonly ports?: readonly KubeSlicePort[] | null;
}

/** core/v1 `ServicePort`. */
export interface KubeServicePort {
  readonly name?: string;
  readonly port: number;
  readonly targetPort?: number | string;
  readonly protocol?: string;
  readonly appProtocol?: string;
}

export interface KubeService extends KubeObject {
  readonly spec?: {
    readonly type?: string;
    readonly ports?: readonly KubeServicePort[] | null;
    readonly selector?: Readonly<Record<string, string>> | null;
    readonly externalName?: string;
  };
}

/** A Pod as `PartialObjectMetadata`: labels only, the least data that works for subsets. */
export type KubePodMetadata = KubeObject;

/** A Node: its labels carry the region and zone. */
export type KubeNode = KubeObject;

export const ENDPOINT_SLICES: KubeResourceType = Object.freeze({
  group: 'discovery.k8s.io',
  version: 'v1',
  plural: 'endpointslices',
  kind: 'EndpointSlice',
  namespaced: true,
});
export const SERVICES: KubeResourceType = Object.freeze({
  group: '',
  version: 'v1',
  plural: 'services',
  kind: 'Service',
  namespaced: true,
});
export const POD_METADATA: KubeResourceType = Object.freeze({
  group: '',
  version: 'v1',
  plural: 'pods',
  kind: 'Pod',
  namespaced: true,
  metadataOnly: true,
});
export const NODES: KubeResourceType = Object.freeze({
  group: '',
  version: 'v1',
  plural: 'nodes',
  kind: 'Node',
  namespaced: false,
});

/** The label that ties an EndpointSlice to its Service. */
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
