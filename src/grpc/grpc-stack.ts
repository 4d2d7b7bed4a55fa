import type { AttemptPolicy } from '../outbound/attempts/attempt-engine.js';
import type { OutboundContext } from '../outbound/context.js';
import { InFlight } from '../outbound/in-flight.js';
import type { Layer } from '../outbound/layer.js';
import { Mirror } from '../outbound/mirror.js';
import { GrpcCallLayer } from './grpc-call-layer.js';
import type { GrpcMeshCore } from './mesh-core.js';

/** What the gRPC calls of one mesh share: its outbound layers, composed once. */
export interface GrpcStack {
  readonly core: GrpcMeshCore;
  readonly ctx: OutboundContext;
  /** The outbound layers (HTTP's, with gRPC's own at the bottom of each route). */
  readonly layer: Layer;
  /** The attempt engine's policy of a call not routed yet (no cluster, no retries). */
  readonly unrouted: AttemptPolicy;
}

const stacks = new WeakMap<GrpcMeshCore, GrpcStack>();

/** The mesh's gRPC stack, made with its first gRPC client. */
export function grpcStackOf(core: GrpcMeshCore): GrpcStack {
  let stack = stacks.get(core);
  if (stack === undefined) {
    stack = makeStack(core);
    stacks.set(core, stack);
  }
  return stack;
}

function makeStack(core: GrpcMeshCore): GrpcStack {
  const { destinations, clusters, clock, random } = core;
  const live = new InFlight();
  const ctx: OutboundContext = {
    destinations,
    clusters,
    clock,
    random,
    // Calls waiting before they are sent (a fault delay, a cluster's first DNS answer, a SHARED
    // rate limit's answer): failed with MeshClosedError as soon as the mesh starts closing.
    live,
    // gRPC keeps a call's messages itself (MeshCall), not a request body.
    retryBufferBytes: 0,
    rateLimits: core.rateLimits,
    telemetry: core.telemetry(),
    // Unused: a gRPC call has no pass-through (GrpcCall.unknownHostRefusal).
    outboundTrafficPolicy: undefined,
    // Unused: gRPC has no mirroring.
    mirror: new Mirror({ clusters, clock, random, destinations }),
    isClosed: () => core.isClosed(),
  };
  core.onClosing(() => {
    live.closing = true;
    for (const item of live.items()) item.stopRetrying();
  });
  return {
    core,
    ctx,
    layer: core.composeStack(ctx, new GrpcCallLayer()),
    unrouted: { clock, random, retry: undefined, hash: undefined, avoidPreviousHosts: false, hedgeAfterMs: 0 },
  };
}
