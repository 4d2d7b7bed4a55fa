/**
 * How one upstream attempt ended, in the terms retry policies, outlier detection and breakers
 * classify by. Kept free of HTTP specifics beyond the status so gRPC can reuse it.
 */

/**
 * A failure that happened on our side of the wire, before or instead of a response (Envoy's
 * "locally originated" errors): the connection could not be made, the stream was refused (HTTP/2
 * REFUSED_STREAM), the connection was reset, or an attempt timed out.
 */
export type LocalOriginFailure = 'connect-failure' | 'refused-stream' | 'reset' | 'timeout';

export interface AttemptOutcome {
  /** The response status; 0 when no response arrived. */
  readonly status: number;
  /** Set when no response arrived, or the connection failed after the response had started. */
  readonly failure: LocalOriginFailure | undefined;
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  // A failed TLS handshake (src/security/tls-connect.ts): Envoy's connect failure with a TLS error.
  'ERR_MESH_UPSTREAM_TLS',
]);

/** Maps a transport error from undici or Node to the failure class policies speak of. */
export function classifyFailure(error: unknown): LocalOriginFailure {
  const e = error as { code?: unknown; message?: unknown; cause?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code !== undefined && CONNECT_CODES.has(code)) return 'connect-failure';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ERR_MESH_ROUTE_TIMEOUT' || code === 'ERR_MESH_PER_TRY_TIMEOUT')
    return 'timeout';
  const message = typeof e?.message === 'string' ? e.message : '';
  // undici reports an HTTP/2 RST_STREAM with its code in the message; 7 is REFUSED_STREAM.
  if (code === 'NGHTTP2_REFUSED_STREAM' || /REFUSED_STREAM|code 7\b/.test(message)) return 'refused-stream';
  if (e?.cause !== undefined && e.cause !== error && code === undefined) return classifyFailure(e.cause);
  return 'reset';
}

/** Envoy's "gateway errors": 502, 503 and 504. */
export function isGatewayError(status: number): boolean {
  return status === 502 || status === 503 || status === 504;
}

/**
 * The caller gave up on the request (an aborted signal, a destroyed body): not the upstream's
 * fault, so neither outlier detection nor a breaker counts it, as Envoy ignores downstream resets.
 */
export function isCallerAbort(error: unknown): boolean {
  const e = error as { name?: unknown; code?: unknown } | null;
  return e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED' || e?.code === 'ABORT_ERR';
}

/**
 * undici refused the request as given before anything was sent (an invalid header name or value,
 * path, method or option: its InvalidArgumentError). The caller's mistake, never the upstream's.
 */
export function isInvalidArgument(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'UND_ERR_INVALID_ARG';
}
