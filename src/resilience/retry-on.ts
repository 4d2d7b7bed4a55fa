import type { LocalOriginFailure } from './outcome.js';

/**
 * Envoy's `retry_on` conditions (x-envoy-retry-on and x-envoy-retry-grpc-on), as bits so a
 * compiled policy tests a condition with one AND. Istio passes `retryOn` to Envoy as written,
 * after taking out plain status codes.
 */
export const RetryOn = {
  '5xx': 1 << 0,
  'gateway-error': 1 << 1,
  reset: 1 << 2,
  'reset-before-request': 1 << 3,
  'connect-failure': 1 << 4,
  'envoy-ratelimited': 1 << 5,
  'retriable-4xx': 1 << 6,
  'refused-stream': 1 << 7,
  'retriable-status-codes': 1 << 8,
  'retriable-headers': 1 << 9,
  'http3-post-connect-failure': 1 << 10,
  cancelled: 1 << 11,
  'deadline-exceeded': 1 << 12,
  internal: 1 << 13,
  'resource-exhausted': 1 << 14,
  unavailable: 1 << 15,
} as const;

export type RetryOnName = keyof typeof RetryOn;

const GRPC_BITS: ReadonlyMap<number, number> = new Map([
  [1, RetryOn.cancelled],
  [4, RetryOn['deadline-exceeded']],
  [13, RetryOn.internal],
  [8, RetryOn['resource-exhausted']],
  [14, RetryOn.unavailable],
]);

/** Any condition that retries a request that got no response. */
const ON_FAILURE =
  RetryOn['5xx'] | RetryOn['gateway-error'] | RetryOn.reset | RetryOn['reset-before-request'] | RetryOn['connect-failure'] | RetryOn['refused-stream'];

export interface ParsedRetryOn {
  readonly bits: number;
  /** Plain HTTP status codes written among the conditions (Istio moves them to retriable codes). */
  readonly statusCodes: readonly number[];
  /** Entries that are neither a condition nor an HTTP status code. */
  readonly unknown: readonly string[];
}

/** Parses a `retryOn` string as istiod does: comma separated, blanks dropped, numbers are codes. */
export function parseRetryOn(text: string): ParsedRetryOn {
  let bits = 0;
  const statusCodes: number[] = [];
  const unknown: string[] = [];
  for (const raw of text.split(',')) {
    const part = raw.trim();
    if (part === '') continue;
    if (/^\d+$/.test(part)) {
      const code = Number(part);
      // istiod keeps only numbers Go's http.StatusText knows; every real status is 100-599.
      if (code >= 100 && code <= 599) statusCodes.push(code);
      else unknown.push(part);
      continue;
    }
    const bit = (RetryOn as Record<string, number>)[part];
    if (bit === undefined) unknown.push(part);
    else bits |= bit;
  }
  if (statusCodes.length > 0) bits |= RetryOn['retriable-status-codes'];
  return { bits, statusCodes, unknown };
}

/**
 * Whether a response with `status` (and, for gRPC, the `grpc-status` of its headers) is retried
 * under `bits`, as Envoy's RetryStateImpl decides on response headers. `headers` has lower-case
 * names, as undici delivers them.
 */
export function retriableResponse(
  bits: number,
  statusCodes: readonly number[],
  status: number,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  retriableHeaderNames: readonly string[],
): boolean {
  if (bits & RetryOn['5xx'] && status >= 500) return true;
  if (bits & RetryOn['gateway-error'] && status >= 502 && status <= 504) return true;
  if (bits & RetryOn['retriable-4xx'] && status === 409) return true;
  if (bits & RetryOn['retriable-status-codes'] && statusCodes.includes(status)) return true;
  if (bits & RetryOn['envoy-ratelimited'] && headers['x-envoy-ratelimited'] !== undefined) return true;
  if (bits & RetryOn['retriable-headers']) {
    for (let i = 0; i < retriableHeaderNames.length; i++) if (headers[retriableHeaderNames[i]!] !== undefined) return true;
  }
  if (bits & GRPC_MASK) {
    // gRPC conditions read grpc-status from the response headers: a trailers-only response.
    const grpc = headers['grpc-status'];
    if (grpc !== undefined) {
      const bit = GRPC_BITS.get(Number(Array.isArray(grpc) ? grpc[0] : grpc));
      if (bit !== undefined && bits & bit) return true;
    }
  }
  return false;
}

const GRPC_MASK = RetryOn.cancelled | RetryOn['deadline-exceeded'] | RetryOn.internal | RetryOn['resource-exhausted'] | RetryOn.unavailable;

/**
 * Whether an attempt that failed without a response is retried. `sent`: the request had been
 * written (for `reset-before-request`). A per-try timeout counts as a reset under 5xx,
 * gateway-error and reset, as Envoy treats it like an upstream 504.
 */
export function retriableFailure(bits: number, failure: LocalOriginFailure, sent: boolean): boolean {
  if (!(bits & ON_FAILURE)) return false;
  if (bits & (RetryOn['5xx'] | RetryOn['gateway-error'] | RetryOn.reset)) return true;
  if (bits & RetryOn['connect-failure'] && failure === 'connect-failure') return true;
  if (bits & RetryOn['refused-stream'] && failure === 'refused-stream') return true;
  if (bits & RetryOn['reset-before-request'] && !sent && failure !== 'timeout') return true;
  return false;
}

export const RETRY_ON_NAMES: readonly string[] = Object.keys(RetryOn);

/** Whether a call that ended with gRPC status `code` is retried under `bits` (Istio's gRPC retryOn names). */
export function retriableGrpcStatus(bits: number, code: number): boolean {
  const bit = GRPC_BITS.get(code);
  return bit !== undefined && (bits & bit) !== 0;
}
