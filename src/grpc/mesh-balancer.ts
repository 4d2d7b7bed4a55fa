import { connectivityState, experimental, Metadata, status } from '@grpc/grpc-js';
import type { Host } from '../balancer/host.js';
import type { CancelTimer } from '../clock.js';
import { MeshError } from '../errors.js';
import { ATTEMPT_KEY, attemptById, TRANSPORT_OPTION } from './registry.js';
import type { GrpcTransportRef, PickTarget } from './registry.js';

/** The load-balancing policy name the mesh resolver selects. */
export const LB_POLICY_NAME = 'sidecarless_mesh';

type SubchannelInterface = experimental.SubchannelInterface;
type PickResult = experimental.PickResult;

class MeshLbConfig implements experimental.TypedLoadBalancingConfig {
  getLoadBalancerName(): string {
    return LB_POLICY_NAME;
  }
  toJsonObject(): object {
    return { [LB_POLICY_NAME]: {} };
  }
  static createFromJson(): MeshLbConfig {
    return new MeshLbConfig();
  }
}

function failed(code: status, details: string): PickResult {
  return {
    pickResultType: experimental.PickResultType.TRANSIENT_FAILURE,
    subchannel: null,
    status: { code, details, metadata: new Metadata() },
    onCallStarted: null,
    onCallEnded: null,
  };
}

/**
 * A call's pick, once its connection is ready. A class, not a literal: grpc-js keeps it for the
 * call's life, and a literal's site that V8 pretenures would put every call's pick, and through its
 * callbacks the call's attempt, in old space (docs/decisions.md, "No per-request literals").
 */
class CompletePick implements PickResult {
  readonly pickResultType = experimental.PickResultType.COMPLETE;
  readonly status = null;
  readonly onCallStarted: () => void;
  readonly onCallEnded: (code: status) => void;

  constructor(
    readonly subchannel: SubchannelInterface,
    attempt: PickTarget,
    host: Host,
  ) {
    this.onCallStarted = () => attempt.callStarted(host);
    this.onCallEnded = (code) => attempt.callEnded(host, code);
  }
}

const QUEUE: PickResult = { pickResultType: experimental.PickResultType.QUEUE, subchannel: null, status: null, onCallStarted: null, onCallEnded: null };

/** The attempt a pick is for: handed over in the call's config, else named in its metadata (taken out: it is not sent). */
function attemptOf(args: experimental.PickArgs): PickTarget | undefined {
  const handed = args.extraPickInfo[ATTEMPT_KEY] as unknown;
  if (typeof handed === 'object' && handed !== null) return handed as PickTarget;
  const id = args.metadata.get(ATTEMPT_KEY)[0];
  args.metadata.remove(ATTEMPT_KEY);
  return attemptById(id);
}

/**
 * Picks for one channel: the call's attempt (registry.ts says how it arrives) says which cluster (the route's
 * weighted destination); the cluster's own balancer picks the host (outlier ejection, locality,
 * panic threshold and all), exactly as for HTTP. grpc-js only supplies the connection.
 */
class MeshPicker implements experimental.Picker {
  constructor(private readonly balancer: MeshLoadBalancer) {}

  pick(args: experimental.PickArgs): PickResult {
    const attempt = attemptOf(args);
    if (!attempt)
      return failed(
        status.INTERNAL,
        'sidecarless: a mesh:/// channel was called without the interceptor of meshGrpcOptions(mesh); pass those options to the client',
      );
    let host = attempt.host;
    if (!host) {
      host = attempt.pick();
      if (!host) return failed(status.UNAVAILABLE, 'no healthy upstream');
      attempt.host = host;
    }
    const balancer = this.balancer;
    const waited = balancer.waitedOn(attempt);
    if (waited?.timedOut) {
      // The connection it waited for did not come up in time: a connect failure, as Envoy's connect_timeout.
      attempt.connectFailed(host);
      return failed(status.UNAVAILABLE, `upstream connect error: ${host.endpoint.address}:${host.endpoint.port}: ${waited.lastError}`);
    }
    const transport = attempt.transport(host);
    if (transport !== undefined && transport instanceof MeshError) return failed(status.UNAVAILABLE, `${transport.code}: ${transport.message}`);
    const connection = balancer.connection(host, attempt.slot, transport);
    const subchannel = connection.subchannel;
    const state = subchannel.getConnectivityState();
    if (state === connectivityState.IDLE || state === connectivityState.CONNECTING) balancer.wait(attempt, connection);
    switch (state) {
      case connectivityState.READY:
        return new CompletePick(subchannel, attempt, host);
      case connectivityState.TRANSIENT_FAILURE:
        attempt.connectFailed(host);
        return failed(
          status.UNAVAILABLE,
          `upstream connect error: ${host.endpoint.address}:${host.endpoint.port}: ${connection.lastError ?? 'refused or unreachable'}`,
        );
      case connectivityState.IDLE:
        subchannel.startConnecting();
        return QUEUE;
      default:
        return QUEUE;
    }
  }
}

/** grpc-js's text of a failed connection, without its `Error: ` prefix and timestamp. */
function connectError(text: string): string {
  return text
    .replace(/^(?:[A-Za-z]*Error: )/, '')
    .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)$/, '')
    .replace(/\s+/g, ' ')
    .trim();
}

/** One endpoint's subchannel under one transport, and why its last connection attempt failed. */
interface Connection {
  readonly subchannel: SubchannelInterface;
  readonly listener: experimental.ConnectivityStateListener;
  /** The transport's id (`plain` for plaintext). */
  readonly transport: string;
  lastError: string | undefined;
  /** Cancels the connect timer, set while calls wait for the connection to come up. */
  cancelTimer: CancelTimer | undefined;
  /** It did not come up within the connect timeout: the calls that waited for it fail, later ones connect anew. */
  timedOut: boolean;
  /** The destination it serves. */
  readonly slot: string;
  /** Its key among the balancer's connections: address, port and destination. */
  readonly key: string;
  /** No longer the balancer's (replaced, timed out, or the balancer destroyed). */
  released: boolean;
}

/**
 * The channel's connections, one subchannel per endpoint address and destination (cluster),
 * made when a pick first needs one, with the transport the destination asks for (plaintext, mesh
 * mTLS, a DestinationRule's TLS). Another transport for the same pair (a rotated certificate,
 * changed credentials or rule) replaces the subchannel: the old one is released and drains.
 * Subchannels with equal options are shared by grpc-js. Each state change publishes a new picker
 * so that calls waiting for a connection pick again.
 */
export class MeshLoadBalancer implements experimental.LoadBalancer {
  private readonly connections = new Map<string, Connection>();
  /** The connection each queued attempt waits for. */
  private readonly waiting = new WeakMap<PickTarget, Connection>();
  /** The last connection picked per host: the next pick for the same destination builds no key. */
  private readonly lastByHost = new WeakMap<Host, Connection>();
  /** A picker was given to the channel: it stays READY, each state change publishes the next. */
  private published = false;

  constructor(private readonly helper: experimental.ChannelControlHelper) {}

  updateAddressList(): boolean {
    this.publish();
    return true;
  }

  /**
   * grpc-js asks on every call (InternalChannel.getConfig); a new picker each time would cost each
   * call a channel state update (its channelz trace entry, a pass over the queued picks).
   */
  exitIdle(): void {
    if (!this.published) this.publish();
  }

  resetBackoff(): void {}

  destroy(): void {
    for (const connection of [...this.connections.values()]) this.release(connection);
  }

  getTypeName(): string {
    return LB_POLICY_NAME;
  }

  waitedOn(attempt: PickTarget): Connection | undefined {
    return this.waiting.get(attempt);
  }

  /**
   * `attempt` waits for `connection` to come up; the first to wait starts its connect timer
   * (DestinationRule `tcp.connectTimeout`, Envoy's connect_timeout). grpc-js itself gives a
   * connection all the time the OS does (minutes for an address that drops SYNs) and none for TLS
   * or HTTP/2 to start: without this a call to such a pod would wait for its deadline, or forever.
   */
  wait(attempt: PickTarget, connection: Connection): void {
    this.waiting.set(attempt, connection);
    if (connection.cancelTimer !== undefined) return;
    const ms = attempt.connectTimeoutMs;
    connection.cancelTimer = attempt.clock.schedule(ms, () => this.timedOut(connection, ms), 'background');
  }

  private timedOut(connection: Connection, ms: number): void {
    connection.cancelTimer = undefined;
    if (connection.subchannel.getConnectivityState() === connectivityState.READY) return;
    connection.timedOut = true;
    connection.lastError = `connect timeout: no connection within ${ms} ms (DestinationRule connectionPool.tcp.connectTimeout)`;
    // Released (grpc-js drops its connecting when no one holds it); the next call connects anew.
    if (!connection.released) this.release(connection);
    this.publish();
  }

  connection(host: Host, slot: string, transport: GrpcTransportRef | undefined): Connection {
    const id = transport?.id ?? 'plain';
    const last = this.lastByHost.get(host);
    if (last !== undefined && !last.released && last.slot === slot && last.transport === id) return last;
    const { address, port } = host.endpoint;
    const key = `${address}:${port}|${slot}`;
    const known = this.connections.get(key);
    if (known?.transport === id) {
      this.lastByHost.set(host, known);
      return known;
    }
    if (known) this.release(known);
    const subchannel = this.helper.createSubchannel({ host: address, port }, transport ? { [TRANSPORT_OPTION]: transport.id } : {});
    const listener: experimental.ConnectivityStateListener = (_subchannel, _previous, state, _keepalive, error) => {
      if (state === connectivityState.TRANSIENT_FAILURE) connection.lastError = error === undefined ? undefined : connectError(error);
      else if (state === connectivityState.READY) connection.lastError = undefined;
      if (state === connectivityState.READY || state === connectivityState.TRANSIENT_FAILURE) this.stopTimer(connection);
      this.publish();
    };
    const connection: Connection = {
      subchannel,
      listener,
      transport: id,
      lastError: undefined,
      cancelTimer: undefined,
      timedOut: false,
      slot,
      key,
      released: false,
    };
    subchannel.addConnectivityStateListener(listener);
    subchannel.ref();
    this.connections.set(key, connection);
    this.lastByHost.set(host, connection);
    subchannel.startConnecting();
    return connection;
  }

  private stopTimer(connection: Connection): void {
    connection.cancelTimer?.();
    connection.cancelTimer = undefined;
  }

  private release(connection: Connection): void {
    connection.released = true;
    this.stopTimer(connection);
    if (this.connections.get(connection.key) === connection) this.connections.delete(connection.key);
    connection.subchannel.removeConnectivityStateListener(connection.listener);
    connection.subchannel.unref();
  }

  private publish(): void {
    // READY throughout: whether a call can go is the picker's answer per attempt, not the channel's.
    this.published = true;
    this.helper.updateState(connectivityState.READY, new MeshPicker(this), null);
  }
}

let registered = false;

/** Registers the mesh's balancer with grpc-js (once per process and build). */
export function registerMeshBalancer(): void {
  if (registered) return;
  registered = true;
  experimental.registerLoadBalancerType(LB_POLICY_NAME, MeshLoadBalancer, MeshLbConfig);
}

export type { PickTarget };
