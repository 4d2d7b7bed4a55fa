import type { GatewayRouteKind, SchemaKind } from '../resource.js';

export type SchemaType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';

/** One `x-kubernetes-validations` entry: a CEL expression over `self` and its failure message. */
export interface CelRule {
  readonly rule: string;
  readonly message: string;
}

/**
 * The subset of a CRD's OpenAPI v3 schema that Istio's and the Gateway API route CRDs use, descriptions stripped, plus two
 * annotations the generator adds because the schema itself does not say them.
 */
export interface SchemaNode {
  readonly type?: SchemaType;
  readonly format?: string;
  readonly enum?: readonly (string | number)[];
  readonly nullable?: boolean;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly minProperties?: number;
  readonly maxProperties?: number;
  readonly required?: readonly string[];
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly additionalProperties?: SchemaNode;
  readonly items?: SchemaNode;
  readonly oneOf?: readonly SchemaNode[];
  readonly anyOf?: readonly SchemaNode[];
  readonly allOf?: readonly SchemaNode[];
  readonly not?: SchemaNode;
  readonly 'x-kubernetes-validations'?: readonly CelRule[];
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
  readonly 'x-kubernetes-int-or-string'?: boolean;
  readonly 'x-kubernetes-list-type'?: string;
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  /** Applied (as Kubernetes does) before CEL rules and `required` are checked; the spec keeps what was written. */
  readonly default?: unknown;
  /** A google.protobuf.Duration, written in Go's duration syntax (`1.5s`, `100ms`, `1h30m`). */
  readonly 'x-sidecarless-duration'?: boolean;
  /** An RE2 regular expression, matched against the whole value. */
  readonly 'x-sidecarless-re2'?: boolean;
}

/** The schemas of one kind: its API group and the `spec` schema of each served version. */
export interface KindSchema {
  readonly kind: SchemaKind | GatewayRouteKind;
  readonly group: string;
  /** The version Kubernetes stores (Istio's newest). */
  readonly storageVersion: string;
  /** Served versions to the `spec` schema; identical versions share one object. */
  readonly versions: Readonly<Record<string, SchemaNode>>;
}
