import { MeshError } from '../errors.js';

/**
 * An HTTP/2 connection's PING went unanswered past DestinationRule
 * `connectionPool.http.http2KeepAlive.timeout`: the connection was closed, and requests still on
 * it fail with this (an upstream failure, like a reset: retried per `retryOn` when nothing of the
 * response had arrived).
 */
export class Http2PingTimeoutError extends MeshError {
  readonly code = 'ERR_MESH_HTTP2_PING_TIMEOUT';
}
