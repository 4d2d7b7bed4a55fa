import type { FieldPath } from '../../document.js';
import { describeTyped } from '../../validate/describe.js';
import type { ReplyHeader } from '../../../resilience/rate-limit/rate-limit-spec.js';
import type { TokenBucketSpec } from '../../../resilience/rate-limit/token-bucket.js';
import type { Report } from './proto-json.js';
import { isObject, ProtoMessage } from './proto-json.js';

/** The type URL of Envoy's HTTP local rate-limit filter configuration. */
export const LOCAL_RATE_LIMIT_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit';
/** The wrappers Istio's documentation puts it in (`type_url` + `value`). */
const TYPED_STRUCT_TYPES = ['type.googleapis.com/udpa.type.v1.TypedStruct', 'type.googleapis.com/xds.type.v3.TypedStruct'];

/** gRPC UNAVAILABLE, what Envoy maps a 429 to; RESOURCE_EXHAUSTED on request. */
export const GRPC_UNAVAILABLE = 14;
export const GRPC_RESOURCE_EXHAUSTED = 8;

/** Envoy's fill timer refuses anything shorter (local_ratelimit_impl.cc). */
const MIN_FILL_INTERVAL_MS = 50;

const FIELDS = [
  'stat_prefix',
  'status',
  'token_bucket',
  'filter_enabled',
  'filter_enforced',
  'request_headers_to_add_when_not_enforced',
  'response_headers_to_add',
  'descriptors',
  'stage',
  'local_rate_limit_per_downstream_connection',
  'local_cluster_rate_limit',
  'enable_x_ratelimit_headers',
  'vh_rate_limits',
  'always_consume_default_token_bucket',
  'rate_limited_as_resource_exhausted',
  'rate_limits',
  'max_dynamic_descriptors',
];
const DESCRIPTORS = 'descriptors (per-descriptor buckets) are not read; every request takes from the token_bucket';

/** What sidecarless reads of a LocalRateLimit. */
export interface LocalRateLimitConfig {
  readonly statPrefix: string;
  /** Status of the local reply: Envoy's `status.code`, 429 when unset or below 400. */
  readonly status: number;
  /** Unset: the filter limits nothing (Envoy allows that at the filter level only). */
  readonly bucket: TokenBucketSpec | undefined;
  /** Fraction of requests checked: `filter_enabled`, 0 when unset (Envoy's default, "for safety"). */
  readonly enabled: number;
  /** Fraction of refusals enforced: `filter_enforced`, 0 when unset. */
  readonly enforced: number;
  readonly replyHeaders: readonly ReplyHeader[];
  readonly grpcStatus: number;
}

/** The LocalRateLimit fields of an Any (`typed_config`), direct or in a TypedStruct; else undefined. */
function unwrap(any: unknown, path: FieldPath): { fields: Readonly<Record<string, unknown>>; path: FieldPath; skip: string[] } | undefined {
  if (!isObject(any)) return undefined;
  const type = any['@type'];
  if (type === LOCAL_RATE_LIMIT_TYPE) return { fields: any, path, skip: ['@type'] };
  if (typeof type === 'string' && TYPED_STRUCT_TYPES.includes(type) && any['type_url'] === LOCAL_RATE_LIMIT_TYPE) {
    const value = any['value'];
    return { fields: isObject(value) ? value : {}, path: [...path, 'value'], skip: [] };
  }
  return undefined;
}

/** Whether an Any (`typed_config`) holds Envoy's HTTP LocalRateLimit. */
export function isLocalRateLimitAny(any: unknown): boolean {
  return unwrap(any, []) !== undefined;
}

/**
 * Reads and checks a LocalRateLimit (`typed_config` at `path`) as Envoy would: unknown fields,
 * wrong types, a missing `stat_prefix` or an unusable token bucket are errors; fields that have
 * no effect here are warnings. `perRoute`: a route or virtual host configuration, which Envoy
 * refuses without a token bucket. Returns undefined when an error was reported.
 */
export function readLocalRateLimit(any: unknown, path: FieldPath, report: Report, perRoute: boolean): LocalRateLimitConfig | undefined {
  const found = unwrap(any, path);
  if (!found) return undefined;
  let failed = false;
  const tracked: Report = (severity, code, message, at) => {
    if (severity === 'error') failed = true;
    report(severity, code, message, at);
  };
  if (found.path.length > path.length && !isObject((any as Record<string, unknown>)['value'])) {
    tracked('error', 'type', `expected an object, found ${describeTyped((any as Record<string, unknown>)['value'])}`, found.path);
    return undefined;
  }
  const m = new ProtoMessage(found.fields, found.path, tracked, FIELDS, found.skip);
  const statPrefix = m.string('stat_prefix', { required: true, minLength: 1 }) ?? '';
  const statusCode = m.message('status', ['code'])?.uint32('code', { required: true, min: 100 });
  const bucket = readTokenBucket(m);
  if (perRoute && !m.has('token_bucket')) {
    tracked('error', 'required', "missing required field 'token_bucket': Envoy refuses a route or virtual host configuration without one", m.path);
  }
  const enabled = readFraction(m, 'filter_enabled');
  const enforced = readFraction(m, 'filter_enforced');
  const replyHeaders = m.list('response_headers_to_add', { maxItems: 10 }).flatMap((item) => readHeaderOption(item.value, item.path, tracked));
  m.enumValue('enable_x_ratelimit_headers', ['OFF', 'DRAFT_VERSION_03']);
  const exhausted = m.bool('rate_limited_as_resource_exhausted');
  if (m.list('request_headers_to_add_when_not_enforced', { maxItems: 10 }).length > 0) {
    m.warn('request_headers_to_add_when_not_enforced', 'not-implemented', 'requests that pass while the limit is not enforced are sent unchanged');
  }
  if (m.list('descriptors').length > 0) m.warn('descriptors', 'not-implemented', DESCRIPTORS);
  if (m.list('rate_limits').length > 0) m.warn('rate_limits', 'not-implemented', DESCRIPTORS);
  for (const name of ['stage', 'vh_rate_limits', 'always_consume_default_token_bucket', 'max_dynamic_descriptors']) {
    if (m.has(name)) m.warn(name, 'not-implemented', `it only affects descriptors; ${DESCRIPTORS}`);
  }
  if (m.bool('local_rate_limit_per_downstream_connection') === true) {
    m.warn('local_rate_limit_per_downstream_connection', 'not-applicable', 'calls made in-process have no downstream connection; the bucket is per process');
  }
  if (m.has('local_cluster_rate_limit')) {
    m.warn('local_cluster_rate_limit', 'not-implemented', 'the bucket is per process; a RateLimitPolicy with scope SHARED shares one budget between replicas');
  }
  if (failed) return undefined;
  return {
    statPrefix,
    status: statusCode === undefined || statusCode < 400 ? 429 : statusCode,
    bucket,
    enabled,
    enforced,
    replyHeaders,
    grpcStatus: exhausted ? GRPC_RESOURCE_EXHAUSTED : GRPC_UNAVAILABLE,
  };
}

function readTokenBucket(m: ProtoMessage): TokenBucketSpec | undefined {
  const tb = m.message('token_bucket', ['max_tokens', 'tokens_per_fill', 'fill_interval']);
  if (!tb) return undefined;
  const maxTokens = tb.uint32('max_tokens', { required: true, min: 1 });
  const tokensPerFill = tb.uint32('tokens_per_fill', { min: 1 }) ?? 1;
  const fillIntervalMs = tb.duration('fill_interval', { required: true });
  if (fillIntervalMs !== undefined && fillIntervalMs < MIN_FILL_INTERVAL_MS) {
    return tb.error(
      'fill_interval',
      'range',
      `expected at least 0.05s: Envoy's local rate limit refuses a fill interval under 50 ms, found "${String(tb.raw('fill_interval'))}"`,
    );
  }
  if (maxTokens === undefined || fillIntervalMs === undefined) return undefined;
  return { maxTokens, tokensPerFill, fillIntervalMs };
}

/** RuntimeFractionalPercent: its `default_value` (there is no runtime here); 0 when unset. */
function readFraction(m: ProtoMessage, name: string): number {
  const rfp = m.message(name, ['default_value', 'runtime_key']);
  if (!rfp) return 0;
  const fp = rfp.message('default_value', ['numerator', 'denominator'], { required: true });
  if (!fp) return 0;
  const numerator = fp.uint32('numerator') ?? 0;
  const denominator = fp.enumValue('denominator', ['HUNDRED', 'TEN_THOUSAND', 'MILLION']) ?? 'HUNDRED';
  const scale = denominator === 'HUNDRED' ? 100 : denominator === 'TEN_THOUSAND' ? 10_000 : 1_000_000;
  // Envoy treats a numerator above the denominator as 100%.
  return Math.min(1, numerator / scale);
}

const APPEND_ACTIONS = ['APPEND_IF_EXISTS_OR_ADD', 'ADD_IF_ABSENT', 'OVERWRITE_IF_EXISTS_OR_ADD', 'OVERWRITE_IF_EXISTS'] as const;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;

function readHeaderOption(value: unknown, path: FieldPath, report: Report): ReplyHeader[] {
  if (!isObject(value)) {
    report('error', 'type', `expected an object, found ${describeTyped(value)}`, path);
    return [];
  }
  const option = new ProtoMessage(value, path, report, ['header', 'append', 'append_action', 'keep_empty_value']);
  const header = option.message('header', ['key', 'value', 'raw_value'], { required: true });
  const append = option.bool('append');
  const action = option.enumValue('append_action', APPEND_ACTIONS);
  const keepEmpty = option.bool('keep_empty_value') ?? false;
  if (append !== undefined && action !== undefined) {
    report('error', 'one-of', "only one of 'append' or 'append_action' may be set (Envoy refuses both)", path);
    return [];
  }
  if (!header) return [];
  const key = header.string('key', { required: true, minLength: 1 });
  const text = header.string('value') ?? '';
  if (header.has('raw_value')) header.warn('raw_value', 'not-implemented', "use 'value'");
  if (key === undefined) return [];
  const name = key.toLowerCase();
  if (!HEADER_NAME.test(name)) {
    report('error', 'pattern', `expected an HTTP header name, found "${key}"`, header.at('key'));
    return [];
  }
  if (text.includes('%')) {
    report('warning', 'not-implemented', "Envoy's %COMMAND% substitution is not implemented: the value is sent as written", header.at('value'));
  }
  if (text === '' && !keepEmpty) return [];
  const mode: ReplyHeader['mode'] =
    append === false || action === 'OVERWRITE_IF_EXISTS_OR_ADD' || action === 'OVERWRITE_IF_EXISTS'
      ? 'set'
      : action === 'ADD_IF_ABSENT'
        ? 'if-absent'
        : 'append';
  // OVERWRITE_IF_EXISTS only touches a header the reply already has.
  if (action === 'OVERWRITE_IF_EXISTS') return [{ name, value: text, mode: 'replace' }];
  return [{ name, value: text, mode }];
}
