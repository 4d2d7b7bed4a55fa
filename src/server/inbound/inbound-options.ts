import type { AuthorizerFunction } from '../../security/authz/custom-authorizer.js';
import type { ExtensionProvider } from '../../security/authz/ext-authz-http.js';
import type { PathNormalization } from './path-normalization.js';

/**
 * The parts of Istio's MeshConfig (the `mesh` ConfigMap of istiod) the inbound side reads, under
 * the same names, so a mesh's settings can be copied over.
 */
export interface MeshConfigOptions {
  /**
   * How request paths are normalised before AuthorizationPolicies match them and the application
   * sees them. Default `BASE` (Istio's `DEFAULT`): RFC 3986 (`/a/../b` is `/b`, `%61` is `a`,
   * `\` is `/`). `MERGE_SLASHES` also merges `//`; `DECODE_AND_MERGE_SLASHES` also decodes
   * `%2F` and `%5C`; `NONE` leaves paths as sent.
   */
  readonly pathNormalization?: { readonly normalization?: PathNormalization | 'DEFAULT' };
  /** Providers a CUSTOM AuthorizationPolicy names (`envoyExtAuthzHttp`; `envoyExtAuthzGrpc` denies, not implemented). */
  readonly extensionProviders?: readonly ExtensionProvider[];
}

/** Options of the inbound side (the server integrations). */
export interface InboundOptions {
  /**
   * CUSTOM AuthorizationPolicy providers implemented by the application, by provider name (they
   * take precedence over `meshConfig.extensionProviders` of the same name).
   */
  readonly authorizers?: Readonly<Record<string, AuthorizerFunction>>;
  /**
   * Proxies in front of this workload that append to `x-forwarded-for` (Envoy's
   * `xff_num_trusted_hops`, Istio's `numTrustedProxies`): `remote.ip` / `remoteIpBlocks` is the
   * entry that many from the right. Default 0: the last entry.
   */
  readonly numTrustedProxies?: number;
  /**
   * The deadline of an inbound request that carries none (`grpc-timeout`,
   * `x-envoy-expected-rq-timeout-ms`), in ms: outbound calls made while handling it get at most
   * the time left. Default none.
   */
  readonly timeoutMs?: number;
}
