import type { ChannelOptions, experimental as grpcExperimental } from '@grpc/grpc-js';
import { experimental, status } from '@grpc/grpc-js';
import { GrpcTargetError } from './errors.js';
import { LB_POLICY_NAME } from './mesh-balancer.js';
import { ATTEMPT_KEY, CLIENT_OPTION, CREDENTIALS_OPTION, MESH_OPTION, bindTarget, clientChannels, meshById, takeStartingAttempt } from './registry.js';
import type { ClientChannels, MeshTarget, PickTarget } from './registry.js';

type CallConfig = ReturnType<grpcExperimental.ConfigSelector['invoke']>;

/** No method config (no grpc-js retries, timeouts or waitForReady: the mesh's route decides), no filters; grpc-js only reads them. */
const NO_METHOD_CONFIG: CallConfig['methodConfig'] = Object.freeze({ name: Object.freeze([]) as unknown as [] });
const NO_FILTERS: CallConfig['dynamicFilterFactories'] = Object.freeze([]) as unknown as CallConfig['dynamicFilterFactories'];
const NO_PICK_INFORMATION: CallConfig['pickInformation'] = Object.freeze({});

/**
 * The channel's config selector: the same config for every method; a call started by the mesh's
 * interceptor gets its attempt in `pickInformation` (a PickTarget where grpc-js types strings: it
 * hands the object to the picker untouched), so the attempt needs no metadata entry.
 */
const MESH_CONFIG_SELECTOR: grpcExperimental.ConfigSelector = {
  invoke(): CallConfig {
    const attempt = takeStartingAttempt();
    return new MeshCallConfig(attempt === undefined ? NO_PICK_INFORMATION : (new AttemptPickInformation(attempt) as unknown as CallConfig['pickInformation']));
  },
  unref(): void {},
};

/**
 * A call's config. Classes, not literals, as every per-call object (docs/decisions.md, "No
 * per-request literals"): grpc-js keeps the config for the call's life, and its pick information
 * holds the attempt.
 */
class MeshCallConfig implements CallConfig {
  readonly methodConfig = NO_METHOD_CONFIG;
  readonly status = status.OK;
  readonly dynamicFilterFactories = NO_FILTERS;

  constructor(readonly pickInformation: CallConfig['pickInformation']) {}
}

class AttemptPickInformation {
  readonly [ATTEMPT_KEY]: PickTarget;

  constructor(attempt: PickTarget) {
    this[ATTEMPT_KEY] = attempt;
  }
}
const ATTRIBUTES = Object.freeze({ [experimental.CHANNEL_ARGS_CONFIG_SELECTOR_KEY]: MESH_CONFIG_SELECTOR });

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
  /** The channel has this resolver's config selector (counted in `channels.resolved`). */
  private resolved = false;
  private readonly channels: ClientChannels | undefined;

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
    this.channels = typeof client === 'number' ? clientChannels(client) : undefined;
    if (this.channels) this.channels.resolvers++;
  }

  updateResolution(): void {
    this.destroyed = false;
    // grpc-js expects the answer later, never inside this call.
    process.nextTick(() => {
      if (this.destroyed) return;
      this.listener({ ok: true, value: [] }, ATTRIBUTES, { ok: true, value: { loadBalancingConfig: [{ [LB_POLICY_NAME]: {} }], methodConfig: [] } }, '');
      // Set by the listener (InternalChannel keeps the selector): calls from now on get their config inside `start`.
      if (!this.resolved && this.channels) {
        this.resolved = true;
        this.channels.resolved++;
      }
    });
  }

  destroy(): void {
    this.destroyed = true;
    // The channel drops its selector as it destroys its resolver (idle, or closed): calls wait for a config again.
    if (this.resolved && this.channels) {
      this.resolved = false;
      this.channels.resolved--;
    }
  }

  static getDefaultAuthority(target: grpcExperimental.GrpcUri): string {
    return target.path;
  }
}
