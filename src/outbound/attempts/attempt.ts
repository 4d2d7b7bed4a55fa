import type { Host } from '../../balancer/index.js';
import type { CancelTimer } from '../../clock.js';

/**
 * What the attempt engine keeps of one attempt, whatever carries it (an undici handler, a grpc-js
 * call): the protocol's attempt extends it with its own transport state.
 */
export class EngineAttempt {
  /** The attempt reached its host (a connection took it): counted active by the cluster's limits. */
  started = false;
  /** Ended (answered, failed, or given up on): counted off its host and the limits, once. */
  ended = false;
  /** Its result no longer matters (a hedge lost, a retriable answer dropped, a timeout). */
  abandoned = false;
  cancelTimer: CancelTimer | undefined = undefined;
  /** The request's next attempt (its engine links them, oldest first). */
  nextAttempt: EngineAttempt | undefined = undefined;

  constructor(
    /** Picked by the cluster's balancer; undefined for a pass-through request (no cluster). */
    readonly host: Host | undefined,
    /** A retry or hedge: admitted by the cluster's limits as one (maxRetries, retry budget). */
    readonly retry: boolean,
    /** Clock time it was sent: its latency sample starts here. */
    readonly startedAt: number,
  ) {}
}
