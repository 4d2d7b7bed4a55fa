import type { ChannelCredentials, ChannelOptions, Interceptor } from '@grpc/grpc-js';
import type { Channel } from '@grpc/grpc-js';
import { experimental } from '@grpc/grpc-js';
import { isMeshCredentials, MeshChannelCredentials } from './channel-credentials.js';
import { GrpcTargetError } from './errors.js';
import { MeshChannel } from './mesh-channel.js';
import { meshClientInterceptor } from './client-interceptor.js';
import { registerMeshBalancer } from './mesh-balancer.js';
import type { GrpcCapable } from './mesh-core.js';
import { MESH_SCHEME, MeshResolver } from './mesh-resolver.js';
import { CLIENT_OPTION, CREDENTIALS_OPTION, MESH_OPTION, meshId, newClientId } from './registry.js';

export { meshServerInterceptor } from './server-interceptor.js';
export { ERROR_CODE_KEY } from './local-status.js';
export { GrpcNoCertificateError, GrpcNoRouteError, GrpcTargetError, GrpcTlsPortError, GrpcUnsupportedRouteError } from './errors.js';
export { meshServerCredentials } from './server-credentials.js';
export { addMeshHealthService } from './health.js';
export type { HealthStatus, MeshHealth, MeshHealthOptions } from './health.js';
export { MESH_SCHEME } from './mesh-resolver.js';
export { MeshChannelCredentials } from './channel-credentials.js';
export type { GrpcCapable } from './mesh-core.js';

// Under our own scheme, never `xds`: @grpc/grpc-js-xds can live in the same process.
experimental.registerResolver(MESH_SCHEME, MeshResolver);
registerMeshBalancer();

/** Client options for a `mesh:///host:port` target: the mesh, and the interceptor doing retries, faults and deadlines. */
export interface MeshGrpcOptions extends ChannelOptions {
  interceptors: Interceptor[];
  /** Makes the channel with the mesh's credentials: each endpoint gets the TLS its DestinationRule or mesh mTLS asks for. */
  channelFactoryOverride: (address: string, credentials: ChannelCredentials, options: ChannelOptions) => Channel;
}

/**
 * The channel of a mesh client. The transport of each endpoint is the mesh's to choose (mTLS,
 * a DestinationRule's TLS, plaintext), as a sidecar would: the application passes
 * `credentials.createInsecure()`, or `new MeshChannelCredentials().compose(callCredentials)` to
 * add call credentials. TLS credentials of its own would be ignored, so they are refused.
 */
function meshChannel(address: string, credentials: ChannelCredentials, given: ChannelOptions): Channel {
  const options = { ...given, [CREDENTIALS_OPTION]: 1 };
  if (isMeshCredentials(credentials)) return new MeshChannel(address, credentials, options);
  if (credentials._isSecure()) {
    throw new GrpcTargetError(
      `gRPC target ${address}: TLS to mesh destinations comes from the mesh (DestinationRule tls, mesh mTLS), not from the client's credentials; pass credentials.createInsecure(), or new MeshChannelCredentials().compose(callCredentials) for call credentials`,
    );
  }
  return new MeshChannel(address, new MeshChannelCredentials(), options);
}

/**
 * Options for one grpc-js client that calls through the mesh:
 * `new Client('mesh:///reviews.default:9080', credentials.createInsecure(), meshGrpcOptions(mesh))`.
 * The VirtualService route on the gRPC path and metadata, its weights, retries, timeout and fault,
 * the DestinationRule's balancer and outlier detection all apply, from the same snapshot as HTTP.
 * TLS and mTLS to each endpoint follow the DestinationRule and mesh mTLS (workload certificates,
 * rotated). Call it once per client (the options are tied to the client's target); `extra` is merged in.
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
    channelFactoryOverride: meshChannel,
  };
}
