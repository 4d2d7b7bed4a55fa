import type { GatewayRouteObject } from './schema/generated/gateway-api-types.js';
import type { ConfigObject as IstioConfigObject } from './schema/generated/types.js';

/** A resource of a kind sidecarless reads, as written in configuration (Istio or Gateway API). */
export type ConfigObject = IstioConfigObject | GatewayRouteObject;

/** The `metadata` of a resource written in code: Kubernetes' ObjectMeta, the fields the mesh reads. */
export interface ConfigObjectMeta {
  /** A DNS-1123 subdomain: lower-case letters, digits, `-` and `.`. */
  readonly name: string;
  /** Default: the mesh's namespace (`MeshOptions.namespace`). */
  readonly namespace?: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** Where sidecarless's extensions are set, e.g. `sidecarless.io/load-balancer`. */
  readonly annotations?: Readonly<Record<string, string>>;
  /** RFC 3339; Istio orders conflicting resources by it (oldest first). */
  readonly creationTimestamp?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly uid?: string;
}

/** A Kubernetes `kind: List` of resources, as `kubectl get -o yaml` writes it. */
export interface ConfigList {
  readonly apiVersion?: 'v1';
  readonly kind: 'List';
  readonly items: readonly ConfigObject[];
}

/** An inline `config` entry of createMesh: a resource or a list of them. */
export type InlineConfig = ConfigObject | ConfigList;
