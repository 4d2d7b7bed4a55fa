import type { MeshClock, RandomSource } from '../clock.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { Snapshot } from '../config/snapshot.js';
import { MeshClosedError } from '../errors.js';
import type { OutboundRequest, ResponseHandler } from '../request-protocol.js';
import type { RateLimiting } from '../resilience/rate-limit/rate-limiting.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';
import type { MeshTelemetry } from '../telemetry/mesh-telemetry.js';
import { DEFAULT_RETRY_BUFFER_BYTES } from '../transport/replayable-body.js';
import type { Origin } from './call.js';
import { OutboundCall } from './call.js';
import type { OutboundContext, OutboundTrafficPolicy } from './context.js';
import { Destinations } from './destinations.js';
import { InFlight } from './in-flight.js';
import type { Layer } from './layer.js';
import { Mirror } from './mirror.js';
import { outboundStack } from './stack.js';

export interface OutboundOptions {
  readonly snapshot: () => Snapshot;
  readonly clusters: ClusterManager;
  readonly clock: MeshClock;
  readonly random: RandomSource;
  /** Hosts no configuration covers: pass through or fail; unset: the Sidecar's, else ALLOW_ANY. */
  readonly outboundTrafficPolicy: OutboundTrafficPolicy | undefined;
  /** How much of a streamed request body is kept so a retry can send it again (default 1 MiB). */
  readonly retryBufferBytes?: number;
  /** Client-side rate limits, decided once per request before it is sent. */
  readonly rateLimits?: RateLimiting;
  /** OpenTelemetry spans and metrics; undefined when `@opentelemetry/api` is absent or telemetry is off. */
  readonly telemetry?: MeshTelemetry | undefined;
  /** The workload's certificates, for ISTIO_MUTUAL to pass-through destinations. */
  readonly certificates?: WorkloadCertificates | undefined;
  /** Where calls go, shared with the mesh's gRPC calls; made here when not given. */
  readonly destinations?: Destinations;
}

/**
 * The outbound path of one mesh: its stack of layers (src/outbound/stack.ts), what they share,
 * and the calls in flight, which close() drains.
 */
export class OutboundPath {
  private closed = false;
  private readonly ctx: OutboundContext;
  private readonly stack: Layer;

  constructor(options: OutboundOptions) {
    const destinations = options.destinations ?? new Destinations(options.snapshot, options.clusters, options.certificates);
    this.ctx = {
      destinations,
      clusters: options.clusters,
      clock: options.clock,
      random: options.random,
      live: new InFlight(),
      retryBufferBytes: options.retryBufferBytes ?? DEFAULT_RETRY_BUFFER_BYTES,
      rateLimits: options.rateLimits,
      telemetry: options.telemetry,
      outboundTrafficPolicy: options.outboundTrafficPolicy,
      mirror: new Mirror({ clusters: options.clusters, clock: options.clock, random: options.random, destinations }),
      isClosed: () => this.closed,
    };
    this.stack = outboundStack(this.ctx);
  }

  /** Sends a request the caller handed the mesh; its events go to `handler`. */
  send(request: OutboundRequest, handler: ResponseHandler, origin: Origin): void {
    this.stack.handle(new OutboundCall(request, handler, origin));
  }

  /**
   * Calls in flight start nothing new (no retry, hedge, back-off or fault delay) and get
   * `drainMs` to finish, after which they are aborted with MeshClosedError; then every pool
   * and agent is released.
   */
  async close(drainMs: number): Promise<void> {
    this.closed = true;
    const live = this.ctx.live;
    live.closing = true;
    for (const item of live.items()) item.stopRetrying();
    if (live.size > 0 && drainMs > 0) {
      await new Promise<void>((resolve) => {
        const cancel = this.ctx.clock.schedule(drainMs, resolve, 'request');
        live.whenEmpty(() => {
          cancel();
          resolve();
        });
      });
    }
    const error = new MeshClosedError(
      drainMs > 0
        ? `the mesh is closed: its drain period of ${drainMs} ms ended before the request completed`
        : 'the mesh is closed: it was destroyed while the request was in flight',
    );
    for (const item of live.items()) item.abortForClose(error);
    // Nothing of the callers' is left in flight: idle connections and stray mirror copies go now.
    await Promise.all([this.ctx.clusters.close(true), this.ctx.destinations.close(error)]);
  }
}
