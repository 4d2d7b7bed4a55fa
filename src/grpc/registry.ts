import type { ConnectionOptions } from 'node:tls';
import type { GrpcMeshCore } from './mesh-core.js';
import { GrpcTargetError } from './errors.js';
import { sharedState } from '../shared-state.js';
import type { Host } from '../balancer/host.js';
import type { MeshError } from '../errors.js';
import type { MeshClock } from '../clock.js';

/** Channel option naming the mesh a `mesh:///` channel routes through (numbers survive grpc-js's option copies). */
export const MESH_OPTION = 'sidecarless.mesh';
/** Channel option tying a channel to the interceptor of the same `meshGrpcOptions` call. */
export const CLIENT_OPTION = 'sidecarless.client';
/** Channel option set by the mesh's channel factory: the channel has the mesh's credentials. */
export const CREDENTIALS_OPTION = 'sidecarless.mesh_credentials';
/** Metadata key carrying one attempt to the picker; the picker takes it out before anything is sent. */
export const ATTEMPT_KEY = 'x-sidecarless-attempt';

/** A transport as the picker hands it to the balancer (`transport.ts`). */
export interface GrpcTransportRef {
  readonly id: string;
}

export interface MeshTarget {
  /** As written after `mesh:///`, e.g. `reviews.default`. */
  readonly host: string;
  readonly port: number;
}

/** One attempt of a call, as the picker sees it: where to go and whom to tell how it ended. */
export interface PickTarget {
  /** The host picked for this attempt; kept across re-picks while its connection comes up. */
  host: Host | undefined;
  pick(): Host | undefined;
  callStarted(host: Host): void;
  connectFailed(host: Host): void;
  callEnded(host: Host, code: number): void;
  /**
   * How to connect to this host (its TLS, undefined: plaintext), or why it cannot be connected
   * to now (mesh mTLS without certificates): then nothing is sent, never in plaintext.
   */
  transport(host: Host): GrpcTransportRef | MeshError | undefined;
  /** The destination (cluster) of the attempt: one connection per pod and destination, replaced when its transport changes. */
  readonly slot: string;
  /** How long a connection to the destination may take to become ready (DestinationRule `tcp.connectTimeout`). */
  readonly connectTimeoutMs: number;
  /** The mesh's clock, which times connections. */
  readonly clock: MeshClock;
}

/**
 * One registry per process: with both builds loaded, the resolver and balancer grpc-js holds (the
 * last registered) must find meshes, targets and attempts that the other build's options made.
 */
interface Registry {
  readonly meshes: Map<number, WeakRef<GrpcMeshCore>>;
  readonly meshIds: WeakMap<GrpcMeshCore, number>;
  readonly targets: Map<number, MeshTarget>;
  readonly attempts: Map<string, PickTarget>;
  ids: { mesh: number; client: number; attempt: number };
}

const registry = sharedState<Registry>('grpc-registry.v1', () => ({
  meshes: new Map(),
  meshIds: new WeakMap(),
  targets: new Map(),
  attempts: new Map(),
  ids: { mesh: 0, client: 0, attempt: 0 },
}));
const { meshes, meshIds, targets, attempts, ids } = registry;

export function meshId(core: GrpcMeshCore): number {
  let id = meshIds.get(core);
  if (id === undefined) {
    id = ++ids.mesh;
    meshIds.set(core, id);
    meshes.set(id, new WeakRef(core));
  }
  return id;
}

export function meshById(id: unknown): GrpcMeshCore | undefined {
  return typeof id === 'number' ? meshes.get(id)?.deref() : undefined;
}

export function newClientId(): number {
  return ++ids.client;
}

/** The resolver of a channel records its target for the interceptor made with the same options. */
export function bindTarget(client: number, target: MeshTarget): void {
  const known = targets.get(client);
  if (known && (known.host !== target.host || known.port !== target.port)) {
    throw new GrpcTargetError(
      `the options of one meshGrpcOptions(mesh) call were given to clients of ${known.host}:${known.port} and ${target.host}:${target.port}; call meshGrpcOptions once per client`,
    );
  }
  targets.set(client, target);
}

export function targetOf(client: number): MeshTarget | undefined {
  return targets.get(client);
}

/**
 * How an attempt reaches the picker. grpc-js asks the channel's config selector (the mesh
 * resolver's, see mesh-resolver.ts) for a call's config synchronously inside the call's `start`
 * once the channel has resolved; the attempt starting then is handed over in the config's
 * `pickInformation`, which grpc-js gives the picker. Before that (a channel's first calls) a call
 * waits for its config and the selector runs later: then the attempt rides in the call's metadata
 * under {@link ATTEMPT_KEY}, which the picker takes out. So do calls from when grpc-js destroys a
 * channel's resolver (idle, close) until it resolves again: the channel may keep its selector
 * meanwhile, but the metadata way is right either way.
 */
interface PickHandover {
  /** The attempt whose grpc-js call is starting now, until the config selector takes it. */
  starting: PickTarget | undefined;
  /** Per client (`meshGrpcOptions` call): its channels' resolvers, and how many have given their channel a config selector. */
  readonly clients: Map<number, ClientChannels>;
}

/** The resolvers of one client's channels (one, unless its options were given to several clients). */
export interface ClientChannels {
  resolvers: number;
  resolved: number;
}

const handover = sharedState<PickHandover>('grpc-pick-handover.v1', () => ({ starting: undefined, clients: new Map() }));

/** The channels of `client`, as its resolvers record them. */
export function clientChannels(client: number): ClientChannels {
  let channels = handover.clients.get(client);
  if (channels === undefined) handover.clients.set(client, (channels = { resolvers: 0, resolved: 0 }));
  return channels;
}

/** Every channel of the client has its config selector: a call's config is chosen inside its `start`. */
export function configInStart(channels: ClientChannels): boolean {
  return channels.resolved === channels.resolvers && channels.resolvers > 0;
}

/** `target`'s grpc-js call starts now (undefined: it has started); the config selector may take it meanwhile. */
export function handOver(target: PickTarget | undefined): void {
  handover.starting = target;
}

/** The config selector takes the attempt starting now (undefined: the call was not started by the mesh's interceptor just now). */
export function takeStartingAttempt(): PickTarget | undefined {
  const target = handover.starting;
  handover.starting = undefined;
  return target;
}

export function registerAttempt(target: PickTarget): string {
  const id = String(++ids.attempt);
  attempts.set(id, target);
  return id;
}

export function attemptById(id: unknown): PickTarget | undefined {
  return typeof id === 'string' ? attempts.get(id) : undefined;
}

export function releaseAttempt(id: string): void {
  attempts.delete(id);
}

/** What a subchannel's connector reads: the TLS of a transport, by the id in its subchannel options. */
export interface RegisteredTransport {
  readonly id: string;
  readonly source: string;
  readonly options: ConnectionOptions;
}

/** Subchannel option naming the transport (TLS settings) of the subchannel; absent: plaintext. */
export const TRANSPORT_OPTION = 'sidecarless.transport';

/**
 * Weakly held: a transport lives as long as its settings and certificate do (the memo of
 * `transport.ts`); a subchannel reads it once, when grpc-js makes it, right after the pick.
 */
const transports = sharedState<Map<string, WeakRef<RegisteredTransport>>>('grpc-transports.v1', () => new Map());
const forget = new FinalizationRegistry<string>((id) => {
  if (transports.get(id)?.deref() === undefined) transports.delete(id);
});

export function registerTransport(transport: RegisteredTransport): void {
  transports.set(transport.id, new WeakRef(transport));
  forget.register(transport, transport.id);
}

export function transportById(id: unknown): RegisteredTransport | undefined {
  return typeof id === 'string' ? transports.get(id)?.deref() : undefined;
}
