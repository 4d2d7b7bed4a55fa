import type { ChannelOptions, Interceptor } from '@grpc/grpc-js';
import { experimental } from '@grpc/grpc-js';
import { meshClientInterceptor } from './client-interceptor.js';
import { registerMeshBalancer } from './mesh-balancer.js';
import type { GrpcCapable } from './mesh-core.js';
import { MESH_SCHEME, MeshResolver } from './mesh-resolver.js';
import { CLIENT_OPTION, MESH_OPTION, meshId, newClientId } from './registry.js';

export { meshServerInterceptor } from './server-interceptor.js';
export { ERROR_CODE_KEY } from './client-interceptor.js';
export { GrpcNoRouteError, GrpcTargetError, GrpcTlsNotSupportedError, GrpcUnsupportedRouteError } from './errors.js';
export { MESH_SCHEME } from './mesh-resolver.js';
export type { GrpcCapable } from './mesh-core.js';

// Under our own scheme, never `xds`: @grpc/grpc-js-xds can live in the same process.
experimental.registerResolver(MESH_SCHEME, MeshResolver);
registerMeshBalancer();

/** Client options for a `mesh:///host:port` target: the mesh, and the interceptor doing retries, faults and deadlines. */
export interface MeshGrpcOptions extends ChannelOptions {
  interceptors: Interceptor[];
}

/**
 * Options for one grpc-js client that calls through the mesh:
 * `new Client('mesh:///reviews.default:9080', credentials.createInsecure(), meshGrpcOptions(mesh))`.
 * The VirtualService route on the gRPC path and metadata, its weights, retries, timeout and fault,
 * the DestinationRule's balancer and outlier detection all apply, from the same snapshot as HTTP.
 * Call it once per client (the options are tied to the client's target); `extra` is merged in.
 */
export function meshGrpcOptions(mesh: GrpcCapable, extra: ChannelOptions & { interceptors?: Interceptor[] } = {}): MeshGrpcOptions {
  const core = mesh.grpcCore();
  const client = newClientId();
  const { interceptors = [], ...rest } = extra;
  return {
    ...rest,
    [MESH_OPTION]: meshId(core),
    [CLIENT_OPTION]: client,
    // The caller's interceptors run first (outermost); the mesh's is the one next to the channel.
    interceptors: [...interceptors, meshClientInterceptor(core, client)],
  };
}
