export { KIND_SCHEMAS } from './generated/schemas.js';
export { GATEWAY_ROUTE_SCHEMAS } from './generated/gateway-api-schemas.js';
export type * from './generated/types.js';
export type { GRPCRoute, GRPCRouteSpec, GatewayRouteObject, GatewayRouteSpecByKind, HTTPRouteSpec } from './generated/gateway-api-types.js';
export type { CelRule, KindSchema, SchemaNode, SchemaType } from './schema-node.js';

import type { MeshResource, SchemaKind } from '../resource.js';
import type { SpecByKind } from './generated/types.js';

/** A validated resource with its spec typed by kind. */
export type IstioResource<K extends SchemaKind = SchemaKind> = MeshResource<K, SpecByKind[K]>;
