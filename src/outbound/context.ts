import type { MeshClock, RandomSource } from '../clock.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { RateLimiting } from '../resilience/rate-limit/rate-limiting.js';
import type { MeshTelemetry } from '../telemetry/mesh-telemetry.js';
import type { Destinations } from './destinations.js';
import type { InFlight } from './in-flight.js';
import type { Mirror } from './mirror.js';

export type OutboundTrafficPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** What the layers share: made once per mesh, handed to each layer when a stack is composed. */
export interface OutboundContext {
  readonly destinations: Destinations;
  readonly clusters: ClusterManager;
  readonly clock: MeshClock;
  readonly random: RandomSource;
  /** Calls in flight, which close() drains. */
  readonly live: InFlight;
  /** How much of a streamed request body is kept so a retry can send it again. */
  readonly retryBufferBytes: number;
  /** Client-side rate limits; undefined when the mesh has none. */
  readonly rateLimits: RateLimiting | undefined;
  /** OpenTelemetry spans and metrics; undefined when `@opentelemetry/api` is absent or telemetry is off. */
  readonly telemetry: MeshTelemetry | undefined;
  /** Hosts no configuration covers: pass through or fail; unset: the Sidecar's, else ALLOW_ANY. */
  readonly outboundTrafficPolicy: OutboundTrafficPolicy | undefined;
  readonly mirror: Mirror;
  /** The mesh is closed: nothing new starts. */
  isClosed(): boolean;
}
