import type { MeshClock, RandomSource } from '../clock.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { OutboundContext } from '../outbound/context.js';
import type { Destinations } from '../outbound/destinations.js';
import type { Layer } from '../outbound/layer.js';
import type { RateLimiting } from '../resilience/rate-limit/rate-limiting.js';
import type { Snapshot } from '../config/snapshot.js';
import type { TrustDomains } from '../security/spiffe-id.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';
import type { InboundEntry } from '../server/inbound/inbound-api.js';
import type { MeshTelemetry } from '../telemetry/mesh-telemetry.js';

/** What the gRPC entry point reads of a mesh: the snapshot and clusters the HTTP path uses. */
export interface GrpcMeshCore {
  snapshot(): Snapshot;
  readonly clusters: ClusterManager;
  /** Service hosts and clusters, remembered per snapshot (the HTTP path's own). */
  readonly destinations: Destinations;
  readonly clock: MeshClock;
  readonly random: RandomSource;
  /** The mesh's client-side rate limits (RateLimitPolicy, outbound local rate limits), as HTTP requests take them. */
  readonly rateLimits?: RateLimiting;
  isClosed(): boolean;
  /** The workload's certificates (mesh mTLS), kept current by rotation; undefined without any. */
  certificates(): WorkloadCertificates | undefined;
  /** The mesh's trust domain and aliases: a caller's SPIFFE ID must be of one. */
  readonly trustDomains: TrustDomains;
  /** The mesh's telemetry: undefined when off or `@opentelemetry/api` is not installed (nothing of OTel loaded). */
  telemetry(): MeshTelemetry | undefined;
  /**
   * The outbound layers (HTTP's route and cluster layers, `callLayer` at the bottom of each route),
   * composed once. Given by the mesh so `sidecarless/grpc` loads no transport code (undici) itself.
   */
  composeStack(ctx: OutboundContext, callLayer: Layer): Layer;
  /** `listener` runs when the mesh starts closing; the result unsubscribes. */
  onClosing(listener: () => void): () => void;
}

/** A `Mesh` from `createMesh`, as `sidecarless/grpc` uses it. */
export interface GrpcCapable {
  /** @internal */
  grpcCore(): GrpcMeshCore;
  readonly inbound: InboundEntry;
}
