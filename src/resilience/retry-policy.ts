import { parseDuration } from '../duration.js';
import { parseRetryOn, RetryOn } from './retry-on.js';

/** A route's retry policy as istiod hands it to Envoy, compiled once per route. */
export interface RetryPolicy {
  /** Retries after the first attempt. */
  readonly numRetries: number;
  /** {@link RetryOn} bits. */
  readonly retryOn: number;
  readonly statusCodes: readonly number[];
  /** 0: no per-try timeout (the route timeout alone bounds attempts). */
  readonly perTryTimeoutMs: number;
  /** Envoy's back-off: base 25 ms unless `backoff` is set, maximum 10 × base. */
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /**
   * Prefer hosts not tried yet (Envoy's previous_hosts predicate). `undefined`: Istio's default,
   * which is on unless the destination hashes requests to hosts (consistent hash).
   */
  readonly ignorePreviousHosts: boolean | undefined;
  /** Envoy's host_selection_retry_max_attempts as istiod sets it. */
  readonly hostSelectionMaxAttempts: number;
  /** Retry in other localities (Envoy's previous_priorities). */
  readonly retryRemoteLocalities: boolean;
}

export interface HttpRetrySpec {
  readonly attempts?: number;
  readonly perTryTimeout?: string;
  readonly retryOn?: string;
  readonly retryRemoteLocalities?: boolean | null;
  readonly retryIgnorePreviousHosts?: boolean | null;
  readonly backoff?: string;
}

const DEFAULT_BACKOFF_MS = 25;
const DEFAULT_RETRY_ON = 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes';

/**
 * istiod's default retry policy, applied to every route without `retries` (and to calls with no
 * VirtualService): 2 retries on connect failure, refused stream, gRPC unavailable or cancelled,
 * and HTTP 503, each on a host not tried before.
 */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  numRetries: 2,
  retryOn: parseRetryOn(DEFAULT_RETRY_ON).bits,
  statusCodes: Object.freeze([503]),
  perTryTimeoutMs: 0,
  backoffBaseMs: DEFAULT_BACKOFF_MS,
  backoffMaxMs: DEFAULT_BACKOFF_MS * 10,
  ignorePreviousHosts: undefined,
  hostSelectionMaxAttempts: 5,
  retryRemoteLocalities: false,
});

/**
 * istiod's ConvertPolicy: no `retries` gives the default; `attempts` 0 turns retries off
 * (undefined); otherwise the default with the written fields replacing its own. A `retryOn`
 * replaces both the conditions and the status codes (numbers in it become the codes).
 */
export function compileRetryPolicy(spec: HttpRetrySpec | undefined): RetryPolicy | undefined {
  if (!spec) return DEFAULT_RETRY_POLICY;
  const attempts = spec.attempts ?? 0;
  if (attempts <= 0) return undefined;
  let retryOn = DEFAULT_RETRY_POLICY.retryOn;
  let statusCodes = DEFAULT_RETRY_POLICY.statusCodes;
  if (spec.retryOn !== undefined && spec.retryOn.trim() !== '') {
    const parsed = parseRetryOn(spec.retryOn);
    retryOn = parsed.bits;
    statusCodes = parsed.statusCodes;
  }
  const backoffBaseMs = spec.backoff ? (parseDuration(spec.backoff) ?? DEFAULT_BACKOFF_MS) : DEFAULT_BACKOFF_MS;
  return {
    numRetries: attempts,
    retryOn,
    statusCodes,
    perTryTimeoutMs: spec.perTryTimeout ? (parseDuration(spec.perTryTimeout) ?? 0) : 0,
    backoffBaseMs,
    backoffMaxMs: backoffBaseMs * 10,
    ignorePreviousHosts: spec.retryIgnorePreviousHosts ?? undefined,
    hostSelectionMaxAttempts: DEFAULT_RETRY_POLICY.hostSelectionMaxAttempts,
    retryRemoteLocalities: spec.retryRemoteLocalities === true,
  };
}

/**
 * Envoy's jittered exponential back-off: before retry `n` (1-based) wait a uniformly random time
 * in [0, min(max, base × (2^n − 1))).
 */
export function backoffDelayMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.backoffMaxMs, policy.backoffBaseMs * (2 ** Math.min(retry, 30) - 1));
  return random() * ceiling;
}

/** Whether any condition retries requests that get a response (so responses must be inspected). */
export function retriesOnResponse(policy: RetryPolicy): boolean {
  const responseBits =
    RetryOn['5xx'] |
    RetryOn['gateway-error'] |
    RetryOn['retriable-4xx'] |
    RetryOn['retriable-status-codes'] |
    RetryOn['envoy-ratelimited'] |
    RetryOn['retriable-headers'] |
    RetryOn.cancelled |
    RetryOn['deadline-exceeded'] |
    RetryOn.internal |
    RetryOn['resource-exhausted'] |
    RetryOn.unavailable;
  return (policy.retryOn & responseBits) !== 0;
}
