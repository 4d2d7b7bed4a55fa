import { MeshError } from '../errors.js';

/** The route's `timeout` passed before the response completed. */
export class RouteTimeoutError extends MeshError {
  readonly code = 'ERR_MESH_ROUTE_TIMEOUT';
  constructor(
    readonly timeoutMs: number,
    readonly responseStarted: boolean,
  ) {
    super(`upstream request timeout: the route timeout of ${timeoutMs} ms passed${responseStarted ? ' while the response was streaming' : ''}`);
  }
}

/** REGISTRY_ONLY and the host is not in the mesh's registry (Istio: 502 BlackHoleCluster). */
export class UnknownHostError extends MeshError {
  readonly code = 'ERR_MESH_UNKNOWN_HOST';
  constructor(readonly host: string) {
    super(`host "${host}" is not in the service registry and outboundTrafficPolicy is REGISTRY_ONLY`);
  }
}

/** The retry policy's `perTryTimeout` passed after the response had started streaming. */
export class PerTryTimeoutError extends MeshError {
  readonly code = 'ERR_MESH_PER_TRY_TIMEOUT';
  constructor(
    readonly timeoutMs: number,
    readonly responseStarted: boolean,
  ) {
    super(`upstream per-try timeout: the attempt's ${timeoutMs} ms passed${responseStarted ? ' while the response was streaming' : ''}`);
  }
}

/**
 * The deadline of the request being handled (see `runWithDeadline`) had passed, or passed before
 * the response completed.
 */
export class DeadlineExceededError extends MeshError {
  readonly code = 'ERR_MESH_DEADLINE_EXCEEDED';
  constructor(readonly responseStarted: boolean) {
    super(
      `deadline exceeded: the inbound request's deadline passed${responseStarted ? ' while the response was streaming' : ' before the call could complete'}`,
    );
  }
}
