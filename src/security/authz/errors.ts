import { MeshError } from '../../errors.js';

/**
 * An inbound request refused by an AuthorizationPolicy (Istio's `RBAC: access denied`) or by a
 * CUSTOM provider. Emitted as the mesh's `inboundDenied` event; the caller got the 403.
 */
export class AccessDeniedError extends MeshError {
  readonly code = 'ERR_MESH_ACCESS_DENIED';
  constructor(
    /** `namespace/name` of the DENY or CUSTOM policy that matched; undefined when no ALLOW policy matched. */
    readonly policy: string | undefined,
    readonly action: 'DENY' | 'ALLOW' | 'CUSTOM',
    readonly method: string,
    readonly path: string,
    /** Who asked: the peer's principal, else its address. */
    readonly source: string,
    message: string,
  ) {
    super(message);
  }
}

/** An inbound request whose JWT failed RequestAuthentication (401). Emitted as `inboundDenied`. */
export class JwtAuthenticationError extends MeshError {
  readonly code = 'ERR_MESH_JWT_INVALID';
  constructor(
    /** Envoy's words for the failure (`Jwt is expired`), also the 401's body. */
    readonly reason: string,
    readonly issuer: string | undefined,
    readonly method: string,
    readonly path: string,
    readonly source: string,
    options?: { cause?: unknown },
  ) {
    super(`${method} ${path} from ${source}: ${reason}${issuer ? ` (issuer ${issuer})` : ''}`, options);
  }
}
