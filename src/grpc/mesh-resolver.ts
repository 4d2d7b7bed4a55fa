import type { ChannelOptions, experimental as grpcExperimental } from '@grpc/grpc-js';
import { experimental } from '@grpc/grpc-js';
import { GrpcTargetError } from './errors.js';
import { LB_POLICY_NAME } from './mesh-balancer.js';
import { CLIENT_OPTION, CREDENTIALS_OPTION, MESH_OPTION, bindTarget, meshById } from './registry.js';
import type { MeshTarget } from './registry.js';

/** The scheme of mesh targets: `mesh:///reviews.default:9080` (never `xds`, so both live in one process). */
export const MESH_SCHEME = 'mesh';

/** `reviews.default:9080` from a `mesh:///` target; a clear error for anything else. */
export function parseMeshTarget(target: grpcExperimental.GrpcUri): MeshTarget {
  const written = `${target.scheme ?? ''}:${target.authority === undefined ? '' : `//${target.authority}`}/${target.path}`;
  const hostPort = experimental.splitHostPort(target.path);
  if (!hostPort || hostPort.host === '' || hostPort.port === undefined || !Number.isInteger(hostPort.port) || hostPort.port <= 0 || hostPort.port > 65_535) {
    throw new GrpcTargetError(`gRPC target ${JSON.stringify(written)}: expected mesh:///<service host>:<port>, e.g. mesh:///reviews.default:9080`);
  }
  return { host: hostPort.host, port: hostPort.port };
}

/**
 * grpc-js name resolution for `mesh:///host:port`: it only ties the channel to its mesh and
 * selects the mesh's balancer; endpoints come from the mesh's clusters at pick time, so a new
 * snapshot or endpoint set needs no re-resolution.
 */
export class MeshResolver implements grpcExperimental.Resolver {
  private destroyed = false;

  constructor(
    target: grpcExperimental.GrpcUri,
    private readonly listener: grpcExperimental.ResolverListener,
    options: ChannelOptions,
  ) {
    const parsed = parseMeshTarget(target);
    if (!meshById(options[MESH_OPTION])) {
      throw new GrpcTargetError(`gRPC target mesh:///${target.path}: the channel has no mesh; pass meshGrpcOptions(mesh) as the client's options`);
    }
    // Another channel (channelOverride, channelFactoryOverride) has credentials of its own, which
    // would connect in plaintext where the mesh asks for TLS: refused.
    if (options[CREDENTIALS_OPTION] !== 1) {
      throw new GrpcTargetError(
        `gRPC target mesh:///${target.path}: the channel was not made by meshGrpcOptions(mesh)'s channel factory (a channelOverride or channelFactoryOverride replaced it), so its connections would not get the mesh's TLS; drop the override`,
      );
    }
    const client = options[CLIENT_OPTION] as unknown;
    if (typeof client === 'number') bindTarget(client, parsed);
  }

  updateResolution(): void {
    this.destroyed = false;
    // grpc-js expects the answer later, never inside this call.
    process.nextTick(() => {
      if (this.destroyed) return;
      this.listener({ ok: true, value: [] }, {}, { ok: true, value: { loadBalancingConfig: [{ [LB_POLICY_NAME]: {} }], methodConfig: [] } }, '');
    });
  }

  destroy(): void {
    this.destroyed = true;
  }

  static getDefaultAuthority(target: grpcExperimental.GrpcUri): string {
    return target.path;
  }
}
