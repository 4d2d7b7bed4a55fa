import type { Host } from '../balancer/index.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import type { OutboundRequest, ResponseHandler, Upstream } from '../request-protocol.js';
import type { AttemptEnd } from '../telemetry/attempt-trace.js';

/** What one attempt tells its observer: sent, answered, failed, over. */
export interface AttemptObserver {
  /** Sends the attempt in the attempt's own context (its span the parent of what undici records). */
  dispatch(target: Upstream, request: OutboundRequest, handler: ResponseHandler): boolean;
  responded(status: number): void;
  failed(error: Error, how: AttemptEnd): void;
  end(): void;
}

/**
 * The one place the layers report to: telemetry (spans, Istio's metrics, response flags) watches
 * a call through it, and no layer calls telemetry itself. Without telemetry every call carries
 * {@link NO_OBSERVER}, so a layer never asks whether anything is recorded.
 */
export interface RequestObserver {
  /** The route and destination chosen (cluster: its `host|subset|port` key). */
  routed(route: string | undefined, destination: string, subset: string | undefined, cluster: string | undefined): void;
  /** A fault delay of this many ms was drawn. */
  delayed(ms: number): void;
  /** The mesh answers the call itself: which reply, and Envoy's response flag for it (0: none). */
  answeredLocally(reason: string, flag: number): void;
  /** An Envoy response flag for how the call went (URX, UT, UF, UC). */
  flag(flag: number): void;
  /** The next attempt is a retry, for this reason (the status, or the failure). */
  retrying(reason: string): void;
  /** The next attempt is a hedge. */
  hedging(): void;
  /** An attempt to `host` starts: its observer, when attempts are recorded. */
  attempt(host: Host | undefined, hedge: boolean, retry: RetryPolicy | undefined): AttemptObserver | undefined;
  /** Sends a mirrored copy, recorded as the call's mirror span. */
  dispatchMirror(target: Upstream, request: OutboundRequest, handler: ResponseHandler, host: string): boolean;
}

function nothing(): void {}

/** The observer of a call nothing records. */
export const NO_OBSERVER: RequestObserver = Object.freeze({
  routed: nothing,
  delayed: nothing,
  answeredLocally: nothing,
  flag: nothing,
  retrying: nothing,
  hedging: nothing,
  attempt: () => undefined,
  dispatchMirror: (target: Upstream, request: OutboundRequest, handler: ResponseHandler) => target.dispatch(request, handler),
});
