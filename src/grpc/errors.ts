import { MeshError } from '../errors.js';

/** A `mesh:///` target the resolver cannot read, or options used for two different targets. */
export class GrpcTargetError extends MeshError {
  readonly code = 'ERR_MESH_GRPC_TARGET';
}

/**
 * The target's port has protocol TLS or HTTPS: such a port carries the caller's own TLS, routed by
 * SNI, and a `mesh:///` channel carries none (the mesh originates TLS only where a DestinationRule
 * or mesh mTLS asks for it). Refused rather than sent in the clear.
 */
export class GrpcTlsPortError extends MeshError {
  readonly code = 'ERR_MESH_GRPC_TLS_PORT';
  constructor(
    readonly destination: string,
    readonly protocol: string,
  ) {
    super(
      `${destination}: its ${protocol} port is routed by SNI and carries the caller's own TLS, which a mesh:/// gRPC channel does not make; the call was not sent (never in plaintext)`,
    );
  }
}

/** The destination has no endpoints the gRPC channel can reach (pass-through, unknown service). */
export class GrpcNoRouteError extends MeshError {
  readonly code = 'ERR_MESH_GRPC_NO_ROUTE';
}

/** The matched route asks for something a gRPC call cannot get yet (a path rewrite): refused, never ignored. */
export class GrpcUnsupportedRouteError extends MeshError {
  readonly code = 'ERR_MESH_GRPC_UNSUPPORTED_ROUTE';
}

/** `meshServerCredentials(mesh)` without workload certificates: no server is made (never a plaintext one instead). */
export class GrpcNoCertificateError extends MeshError {
  readonly code = 'ERR_MESH_GRPC_NO_CERTIFICATE';
}
