import type { InterceptingCall, Metadata, StatusObject } from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import type { Host } from '../balancer/host.js';
import type { MeshClock } from '../clock.js';
import type { Cluster } from '../cluster/cluster.js';
import { MeshError } from '../errors.js';
import { EngineAttempt } from '../outbound/attempts/attempt.js';
import type { GrpcMeshCore } from './mesh-core.js';
import type { WireBytes } from './mesh-channel.js';
import type { GrpcTransportRef, PickTarget } from './registry.js';
import { transportFor } from './transport.js';

export type CallInterface = ConstructorParameters<typeof InterceptingCall>[0];

/** What the call's attempt engine hears from the picker about one attempt. */
export interface AttemptOwner {
  attemptStarted(attempt: CallAttempt): void;
  onMetadata(attempt: CallAttempt, metadata: Metadata): void;
  onMessage(attempt: CallAttempt, message: unknown): void;
  onStatus(attempt: CallAttempt, status: StatusObject): void;
  /** grpc-js's onCallEnded: the attempt's call on `host` ended with `code`. */
  attemptCallEnded(attempt: CallAttempt, host: Host, code: number): void;
}

/**
 * One attempt of a call. The attempt engine picked its host before the grpc-js call started; the
 * mesh's picker gets the attempt with the call (registry.ts says how), connects to that host, and
 * reports back when the call reached it and how it ended (outlier detection, balancer statistics,
 * the cluster's limits, in Envoy's terms: UNAVAILABLE is a 503, a gateway error).
 */
export class CallAttempt extends EngineAttempt implements PickTarget {
  call: CallInterface | undefined = undefined;
  /** Its id in the attempt registry, when it rides to the picker in the metadata (registry.ts); else empty. */
  id = '';
  perTryTimedOut = false;
  connectFailure = false;
  callerCancelled = false;
  /** No transport to its host (mesh mTLS without certificates): never sent, never retried. */
  noHost = false;
  /** The attempt was half-closed (after its last message was handed over). */
  halfClosed = false;
  /** Response headers arrived (not trailers only). */
  metadataReceived = false;
  /** Its response headers, kept until the response is the caller's. */
  heldMetadata: Metadata | undefined = undefined;
  /** A unary response's message, kept until its status says whether the attempt is retried. */
  heldMessage: unknown = undefined;
  /** `heldMessage` holds one (grpc-js hands a unary call `null` when none came). */
  holdsMessage = false;
  /** grpc-js's callback for a message this attempt sent: made once per attempt of a client stream. */
  onSent: (() => void) | undefined = undefined;
  /** The attempt's CLIENT span, when traced. */
  span: Span | undefined = undefined;
  /** Its serialized messages, counted when Istio's byte metrics are recorded. */
  bytes: WireBytes | undefined = undefined;

  constructor(
    private readonly owner: AttemptOwner,
    private readonly core: GrpcMeshCore,
    private readonly cluster: Cluster,
    host: Host,
    /** The host the client wrote in its target: Envoy's auto SNI for a DestinationRule's TLS. */
    private readonly authorityHost: string,
    retry: boolean,
  ) {
    super(host, retry, core.clock.now());
  }

  /** A pod sent the attempt's status (not a refused connection, its per-try timeout, the caller's cancel, or never sent). */
  get podAnswered(): boolean {
    return !(this.noHost || this.connectFailure || this.perTryTimedOut || this.callerCancelled);
  }

  // ---- PickTarget: the mesh's picker ----

  pick(): Host | undefined {
    if (!this.host) this.noHost = true;
    return this.host;
  }

  callStarted(): void {
    this.owner.attemptStarted(this);
  }

  connectFailed(host: Host): void {
    this.connectFailure = true;
    this.cluster.report(host, { status: 0, failure: 'connect-failure' });
  }

  callEnded(host: Host, code: number): void {
    this.owner.attemptCallEnded(this, host, code);
  }

  // ---- the listener of its grpc-js call ----

  onReceiveMetadata(metadata: Metadata): void {
    this.owner.onMetadata(this, metadata);
  }

  onReceiveMessage(message: unknown): void {
    this.owner.onMessage(this, message);
  }

  onReceiveStatus(status: StatusObject): void {
    this.owner.onStatus(this, status);
  }

  get slot(): string {
    return this.cluster.name;
  }

  get connectTimeoutMs(): number {
    return this.cluster.connectTimeoutMs;
  }

  get clock(): MeshClock {
    return this.core.clock;
  }

  transport(host: Host): GrpcTransportRef | MeshError | undefined {
    const transport = transportFor(this.cluster, host, this.authorityHost, this.core.certificates());
    // Never the pod's fault, never retried: the call is not sent at all.
    // Plaintext (undefined) is the usual answer: no `instanceof` (a custom one, for both builds) for it.
    if (transport !== undefined && transport instanceof MeshError) this.noHost = true;
    return transport;
  }
}
