import type { RawDocument } from './document.js';
import type { ResourceRef } from '../issue.js';

/**
 * The kinds sidecarless validates against a CRD schema: Istio's, and its own RateLimitPolicy
 * (sidecarless.io, CRD in deploy/crds/). EnvoyFilter is read for its local rate-limit patches only.
 */
export const SCHEMA_KINDS = [
  'VirtualService',
  'DestinationRule',
  'ServiceEntry',
  'WorkloadEntry',
  'Sidecar',
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'EnvoyFilter',
  'RateLimitPolicy',
] as const;
export type SchemaKind = (typeof SCHEMA_KINDS)[number];

/** Gateway API routes (gateway.networking.k8s.io) attached to a Service: GAMMA mesh routing. */
export const GATEWAY_ROUTE_KINDS = ['HTTPRoute', 'GRPCRoute'] as const;
export type GatewayRouteKind = (typeof GATEWAY_ROUTE_KINDS)[number];

/** Every kind sidecarless reads. */
export const RESOURCE_KINDS = [...SCHEMA_KINDS, ...GATEWAY_ROUTE_KINDS] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export interface ResourceMetadata {
  readonly name: string;
  readonly namespace: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  /** RFC 3339; Istio orders conflicting resources by it (oldest first), then by namespace/name. */
  readonly creationTimestamp?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
}

/** A validated resource: the envelope normalised (namespace defaulted), the spec as written. */
export interface MeshResource<K extends ResourceKind = ResourceKind, S = unknown> {
  readonly apiVersion: string;
  readonly kind: K;
  readonly metadata: ResourceMetadata;
  readonly spec: S;
  /** The document it came from, for locating fields in later (cross-resource) findings. */
  readonly document: RawDocument;
}

export function resourceRef(resource: Pick<MeshResource, 'kind' | 'metadata'>): ResourceRef {
  return { kind: resource.kind, namespace: resource.metadata.namespace, name: resource.metadata.name };
}

/** `Kind/namespace/name`: the identity of a resource within the mesh. */
export function resourceKey(resource: Pick<MeshResource, 'kind' | 'metadata'>): string {
  return `${resource.kind}/${resource.metadata.namespace}/${resource.metadata.name}`;
}
