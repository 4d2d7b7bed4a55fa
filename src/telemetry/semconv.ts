/**
 * Attribute and metric names of the stable HTTP client semantic conventions, copied as constants:
 * `@opentelemetry/semantic-conventions` is not a runtime dependency of the library.
 */
export const ATTR_HTTP_REQUEST_METHOD = 'http.request.method';
export const ATTR_HTTP_REQUEST_METHOD_ORIGINAL = 'http.request.method_original';
export const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
export const ATTR_HTTP_REQUEST_RESEND_COUNT = 'http.request.resend_count';
export const ATTR_SERVER_ADDRESS = 'server.address';
export const ATTR_SERVER_PORT = 'server.port';
export const ATTR_NETWORK_PEER_ADDRESS = 'network.peer.address';
export const ATTR_NETWORK_PEER_PORT = 'network.peer.port';
export const ATTR_URL_FULL = 'url.full';
export const ATTR_URL_SCHEME = 'url.scheme';
export const ATTR_ERROR_TYPE = 'error.type';
export const METRIC_HTTP_CLIENT_REQUEST_DURATION = 'http.client.request.duration';
export const METRIC_HTTP_SERVER_REQUEST_DURATION = 'http.server.request.duration';
export const ATTR_URL_PATH = 'url.path';
export const ATTR_URL_QUERY = 'url.query';
export const ATTR_CLIENT_ADDRESS = 'client.address';
export const ATTR_USER_AGENT_ORIGINAL = 'user_agent.original';
export const ATTR_NETWORK_PROTOCOL_VERSION = 'network.protocol.version';
// The RPC conventions, for gRPC calls.
export const ATTR_RPC_SYSTEM = 'rpc.system';
export const ATTR_RPC_SERVICE = 'rpc.service';
export const ATTR_RPC_METHOD = 'rpc.method';
export const ATTR_RPC_GRPC_STATUS_CODE = 'rpc.grpc.status_code';

/** The spec's explicit bucket boundaries advice for `http.client.request.duration` (seconds). */
export const HTTP_DURATION_BUCKETS_S: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10];

/** Methods the spec knows; any other is reported as `_OTHER` with the original beside it. */
const KNOWN_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE', 'QUERY']);

/** `http.request.method` for a method as sent (case-sensitive, as the spec asks). */
export function semconvMethod(method: string): string {
  return KNOWN_METHODS.has(method) ? method : '_OTHER';
}

// Our own attributes, all under `sidecarless.` (docs/telemetry.md lists them).
export const ATTR_MESH_ROUTE = 'sidecarless.route';
export const ATTR_MESH_CLUSTER = 'sidecarless.cluster';
export const ATTR_MESH_DESTINATION = 'sidecarless.destination.host';
export const ATTR_MESH_SUBSET = 'sidecarless.destination.subset';
export const ATTR_MESH_RETRY_REASON = 'sidecarless.retry.reason';
export const ATTR_MESH_HEDGE = 'sidecarless.hedge';
export const ATTR_MESH_ABANDONED = 'sidecarless.abandoned';
export const ATTR_MESH_FAULT_DELAY = 'sidecarless.fault.delay_ms';
export const ATTR_MESH_FAULT_ABORT = 'sidecarless.fault.abort';
export const ATTR_MESH_RATE_LIMITED = 'sidecarless.rate_limited';
export const ATTR_MESH_OVERFLOW = 'sidecarless.overflow';
export const ATTR_MESH_LOCAL_REPLY = 'sidecarless.local_reply';
export const ATTR_MESH_RESPONSE_FLAGS = 'sidecarless.response_flags';
export const ATTR_MESH_MIRROR = 'sidecarless.mirror';
export const ATTR_MESH_ATTEMPTS = 'sidecarless.attempts';
/** The attempt's index for a gRPC call (the RPC conventions have no `http.request.resend_count`). */
export const ATTR_MESH_RESEND_COUNT = 'sidecarless.resend_count';

/** The name of the span of one logical request, parent of its attempts when nothing else is. */
export const REQUEST_SPAN_NAME = 'sidecarless.request';

/** `rpc.service` and `rpc.method` of a gRPC path `/package.Service/Method`. */
export function rpcNames(path: string): { readonly service: string; readonly method: string } {
  const slash = path.lastIndexOf('/');
  if (slash <= 0) return { service: path.replace(/^\//, ''), method: '' };
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}
