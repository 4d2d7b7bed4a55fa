import { MeshError } from '../errors.js';

/** A `mesh:///` target the resolver cannot read, or options used for two different targets. */
export class GrpcTargetError extends MeshError {
  readonly code = 'ERR_MESH_GRPC_TARGET';
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
