import { MeshError } from '../errors.js';

/**
 * A connection-pool limit of the destination's DestinationRule was reached, so the request was
 * failed without touching the network. Callers never get it thrown: the mesh answers as Envoy
 * does, 503 with `x-envoy-overloaded: true` and `x-sidecarless-response-flags: UO`, and names
 * the limit in `x-sidecarless-overflow` (see docs/errors.md).
 */
export class OverflowError extends MeshError {
  readonly code = 'ERR_MESH_OVERFLOW';
  constructor(
    /** The cluster (destination host|subset|port) whose limit was reached. */
    readonly cluster: string,
    /** The DestinationRule field path of the limit, e.g. `connectionPool.http.http1MaxPendingRequests`. */
    readonly limit: string,
    readonly value: number,
  ) {
    super(`upstream overflow: ${cluster} reached ${limit} (${value})`);
  }
}

/** A client-side rate limit refused the request before it reached the network (HTTP 429). */
export class RateLimitedError extends MeshError {
  readonly code = 'ERR_MESH_RATE_LIMITED';
  constructor(
    /** Which limit refused it: the policy's `namespace/name` and limit name. */
    readonly limit: string,
    /** Milliseconds until a token is available again. */
    readonly retryAfterMs: number,
  ) {
    super(`rate limited by ${limit}: retry after ${Math.ceil(retryAfterMs / 1000)} s`);
  }
}

/**
 * The service's circuit breaker is open: the request was failed without touching the network.
 * Callers never get it thrown: they get 503 with its message as the body (or the breaker's
 * fallback answer), flagged `x-sidecarless-response-flags: UO` (see docs/errors.md).
 */
export class BreakerOpenError extends MeshError {
  readonly code = 'ERR_MESH_BREAKER_OPEN';
  constructor(
    /** The destination service host (FQDN) whose breaker refused the request. */
    readonly host: string,
  ) {
    super(`circuit breaker open for ${host}`);
  }
}

/**
 * A SHARED rate limit cannot use Redis (none configured, or it stopped answering): the limit is
 * enforced per process meanwhile. Emitted as the mesh's `rateLimitError` event, never thrown at a
 * caller; emitted again (without `cause`) when Redis answers again.
 */
export class RateLimitStoreError extends MeshError {
  readonly code = 'ERR_MESH_RATE_LIMIT_STORE';
  constructor(
    /** The limit concerned (`namespace/name/limit`). */
    readonly limit: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${limit}: ${message}`, options);
  }
}
