/**
 * Envoy's response flags, as Istio reports them in `response_flags`: bits a request collects on
 * its way, rendered as Envoy's comma-separated short names (`-` for none).
 */
export const ResponseFlag = {
  /** NR: no route matched. */
  NR: 1,
  /** UH: no healthy upstream host. */
  UH: 2,
  /** UF: upstream connection failure. */
  UF: 4,
  /** UO: upstream overflow (a connection-pool limit refused the request). */
  UO: 8,
  /** URX: the retry limit was reached (the last answer was still retriable). */
  URX: 16,
  /** UT: upstream request timeout. */
  UT: 32,
  /** DI: the request was delayed by fault injection. */
  DI: 64,
  /** FI: the request was aborted by fault injection. */
  FI: 128,
  /** RL: rate limited locally. */
  RL: 256,
  /** DC: the caller cancelled (downstream connection termination). */
  DC: 512,
  /** UC: the upstream connection was reset or closed before the response ended. */
  UC: 1024,
  /** UR: upstream remote reset. */
  UR: 2048,
  /** NC: the route's destination cluster does not exist (a subset no DestinationRule defines). */
  NC: 4096,
  /** UAEX: denied by the external authorization service (a CUSTOM AuthorizationPolicy). */
  UAEX: 8192,
} as const;

/**
 * The response header on every answer the mesh makes itself where Envoy would answer locally (no
 * route, no healthy upstream, overflow, timeout, fault abort, rate limit, open breaker): Envoy's
 * response flags for it, as `%RESPONSE_FLAGS%` prints them (`UH`, `DI,FI`). Absent from
 * upstream responses and from configured answers (direct response, redirect), which Envoy flags
 * with none.
 */
export const RESPONSE_FLAGS_HEADER = 'x-sidecarless-response-flags';

const NAMES = Object.keys(ResponseFlag) as (keyof typeof ResponseFlag)[];
const cache = new Map<number, string>();

/** `UO`, `DI,FI`, or `-`, as Envoy's `%RESPONSE_FLAGS%` prints them. */
export function formatResponseFlags(bits: number): string {
  if (bits === 0) return '-';
  let text = cache.get(bits);
  if (text === undefined) {
    text = NAMES.filter((n) => (bits & ResponseFlag[n]) !== 0).join(',');
    cache.set(bits, text);
  }
  return text;
}
