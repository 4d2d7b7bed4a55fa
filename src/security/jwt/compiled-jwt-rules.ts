// The JWT rules of the RequestAuthentications in force, as config compiles them
// (config/compile/security/request-authentication.ts) and the JWT layer reads them.
import type { ResourceRef } from '../../issue.js';

/** Where a token may be: a header (with a prefix to strip), a query parameter or a cookie. */
export type TokenLocation =
  | { readonly kind: 'header'; readonly name: string; readonly prefix: string }
  | { readonly kind: 'param'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string };

/** One `jwtRules` entry of a RequestAuthentication that applies to this workload. */
export interface CompiledJwtRule {
  readonly ref: ResourceRef;
  /** '' when the rule sets none: the issuer is then not checked. */
  readonly issuer: string;
  readonly audiences: readonly string[];
  readonly jwksUri: string | undefined;
  /** Inline JWKS text. */
  readonly jwks: string | undefined;
  readonly locations: readonly TokenLocation[];
  readonly forwardOriginalToken: boolean;
  readonly outputPayloadToHeader: string | undefined;
  readonly outputClaimToHeaders: readonly { readonly header: string; readonly claim: string }[];
  readonly spaceDelimited: ReadonlySet<string>;
  /** JWKS fetch timeout (Istio's `timeout`, default 5 s). */
  readonly timeoutMs: number;
}

export interface CompiledRequestAuthentication {
  readonly rules: readonly CompiledJwtRule[];
  /** Every location of every rule, deduplicated, in rule order: where a token is looked for. */
  readonly locations: readonly TokenLocation[];
  readonly empty: boolean;
}

export const NO_REQUEST_AUTHENTICATION: CompiledRequestAuthentication = Object.freeze({ rules: [], locations: [], empty: true });
