import type { FieldPath } from '../../document.js';
import type {
  CorsPolicy,
  HTTPDirectResponse,
  HTTPFaultInjection,
  HTTPMatchRequest,
  HTTPRedirect,
  HTTPRetry,
  HTTPRewrite,
  HTTPRoute,
  HTTPRouteDestination,
  Headers,
  StringMatch,
} from '../../schema/index.js';
import { parseDurationNanos } from '../../../duration.js';
import { checkDestination, checkDuration, checkGatewayNames, checkPercentage, checkPort } from './common-rules.js';
import { checkHeaderOperations, isAuthorityHeader, validateCorsHeaderName, validateMatchHeaderName } from './header-rules.js';
import { isDns1123Label, validateLabels } from './names.js';
import type { RuleReport } from './rule-report.js';
import { goFloat, q } from './rule-report.js';
import { checkRetryOn } from './retry-on-rules.js';

const GRPC_STATUSES = new Set([
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
]);
const CORS_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', '*']);
const KB = 1024;
const MB = 1024 * KB;

/** Where an http route sits: in a VirtualService with hosts, or in a delegate (one without). */
export interface HttpRouteContext {
  readonly inDelegate: boolean;
}

/**
 * istiod's validateHTTPRoute: the route's action (exactly one of route, redirect, directResponse,
 * or a delegate), its matches, header operations, fault, mirrors, redirect, direct response,
 * retries, rewrite, destinations and timeout.
 */
export function checkHttpRoute(route: HTTPRoute, path: FieldPath, context: HttpRouteContext, report: RuleReport): void {
  checkConflicts(route, path, context, report);
  route.match?.forEach((match, i) => checkMatch(match, [...path, 'match', i], report));
  checkHeaderOperations(route.headers, [...path, 'headers'], report);
  checkCors(route.corsPolicy, [...path, 'corsPolicy'], report);
  checkFault(route.fault, [...path, 'fault'], report);
  checkMirrors(route, path, report);
  checkRedirect(route.redirect, route.match, [...path, 'redirect'], report);
  checkDirectResponse(route.directResponse, [...path, 'directResponse'], report);
  checkRetries(route.retries, [...path, 'retries'], report);
  checkRewrite(route.rewrite, route.headers, path, report);
  checkDestinations(route.route, [...path, 'route'], report);
  checkDuration(route.timeout, [...path, 'timeout'], report);
}

function checkConflicts(route: HTTPRoute, path: FieldPath, context: HttpRouteContext, report: RuleReport): void {
  const routes = route.route?.length ?? 0;
  if (route.delegate && !context.inDelegate) {
    // A root route hands its requests to the delegate; it may not act itself.
    if (route.redirect) report.error([...path, 'redirect'], `root HTTP route ${route.name ?? ''} must not specify redirect`);
    if (route.route) report.error([...path, 'route'], `root HTTP route ${route.name ?? ''} must not specify route`);
    return;
  }
  if (route.delegate) report.error([...path, 'delegate'], 'delegate HTTP route cannot contain delegate');
  if (route.redirect) {
    if (routes > 0) report.error(path, 'HTTP route cannot contain both route and redirect');
    if (route.fault) report.error(path, 'HTTP route cannot contain both fault and redirect');
    if (route.rewrite) report.error(path, 'HTTP route rule cannot contain both rewrite and redirect');
    if (route.directResponse) report.error(path, 'HTTP route rule cannot contain both direct_response and redirect');
  } else if (route.directResponse) {
    if (routes > 0) report.error(path, 'HTTP route cannot contain both route and direct_response');
    if (route.fault) report.error(path, 'HTTP route cannot contain both fault and direct_response');
    if (route.rewrite) report.error(path, 'HTTP route rule cannot contain both rewrite and direct_response');
  } else if (routes === 0) {
    report.error(path, 'HTTP route, redirect or direct_response is required');
  }
  if (route.mirror && (route.mirrors?.length ?? 0) > 0) report.error(path, 'HTTP route cannot contain both mirror and mirrors');
}

/** validateStringMatch: an empty prefix or regex matches nothing Envoy accepts (the URI may have an empty prefix). */
function checkStringMatch(match: StringMatch | undefined, where: string, path: FieldPath, report: RuleReport, emptyPrefix = false): void {
  if (!match) return;
  if (match.prefix === '' && !emptyPrefix) {
    report.error([...path, 'prefix'], `${q(where)}: prefix string match should not be empty`);
  }
  if (match.regex !== undefined) checkRegex(match.regex, where, [...path, 'regex'], report);
}

/** validateStringRegexp beyond RE2 syntax (checked by the schema walk): not empty, at most 1024 characters. */
export function checkRegex(regex: string, where: string, path: FieldPath, report: RuleReport): void {
  if (regex === '') report.error(path, `${q(where)}: regex string match should not be empty`);
  else if (regex.length > 1024) report.error(path, `${q(where)}: regex is too large, max length allowed is 1024`);
}

function checkMatch(match: HTTPMatchRequest, path: FieldPath, report: RuleReport): void {
  for (const [name, header] of Object.entries(match.headers ?? {})) {
    const bad = validateMatchHeaderName(name);
    if (bad) report.error([...path, 'headers', name], bad);
    checkStringMatch(header, 'headers', [...path, 'headers', name], report);
  }
  for (const [name, header] of Object.entries(match.withoutHeaders ?? {})) {
    const bad = validateMatchHeaderName(name);
    if (bad) report.error([...path, 'withoutHeaders', name], bad);
    // `regex: "*"` is no RE2: Istio reads it as "the header is present".
    if (header.regex !== '*') checkStringMatch(header, 'withoutHeaders', [...path, 'withoutHeaders', name], report);
  }
  checkStringMatch(match.uri, 'uri', [...path, 'uri'], report, true);
  checkStringMatch(match.scheme, 'scheme', [...path, 'scheme'], report);
  checkStringMatch(match.method, 'method', [...path, 'method'], report);
  checkStringMatch(match.authority, 'authority', [...path, 'authority'], report);
  for (const [name, param] of Object.entries(match.queryParams ?? {})) checkStringMatch(param, 'queryParams', [...path, 'queryParams', name], report);
  if (match.port) checkPort(match.port, [...path, 'port'], report);
  for (const bad of validateLabels(match.sourceLabels)) report.error([...path, 'sourceLabels'], bad);
  checkGatewayNames(match.gateways, [...path, 'gateways'], report);
  if (match.sourceNamespace && !isDns1123Label(match.sourceNamespace)) {
    report.error([...path, 'sourceNamespace'], `sourceNamespace match ${match.sourceNamespace} is invalid`);
  }
}

function checkCors(policy: CorsPolicy | undefined, path: FieldPath, report: RuleReport): void {
  if (!policy) return;
  policy.allowOrigins?.forEach((origin, i) => {
    const value = origin.exact ?? origin.prefix ?? origin.regex ?? '';
    if (value === '') report.error([...path, 'allowOrigins', i], `'${value}' is not a valid match type for CORS allow origins`);
    else if (origin.regex !== undefined) checkRegex(origin.regex, 'corsPolicy.allowOrigins', [...path, 'allowOrigins', i, 'regex'], report);
  });
  policy.allowMethods?.forEach((method, i) => {
    if (!CORS_METHODS.has(method)) report.error([...path, 'allowMethods', i], `${q(method)} is not a supported HTTP method`);
  });
  for (const field of ['allowHeaders', 'exposeHeaders'] as const) {
    policy[field]?.forEach((name, i) => {
      const bad = validateCorsHeaderName(name);
      if (bad) report.error([...path, field, i], bad);
    });
  }
  if (policy.maxAge !== undefined) {
    checkDuration(policy.maxAge, [...path, 'maxAge'], report);
    const ns = parseDurationNanos(policy.maxAge);
    if (ns !== undefined && ns % 1_000_000_000n > 0n) report.error([...path, 'maxAge'], 'max_age duration is accurate only to seconds precision');
  }
}

/** Envoy takes 200-599 (Istio's own check lets 600 through; Envoy then refuses the route). */
function validateHttpStatus(status: number): string | undefined {
  return status < 200 || status > 599 ? `HTTP status ${status} is not in range 200-599` : undefined;
}

function checkFault(fault: HTTPFaultInjection | undefined, path: FieldPath, report: RuleReport): void {
  if (!fault) return;
  if (!fault.abort && !fault.delay) report.error(path, 'HTTP fault injection must have an abort and/or a delay');
  const abort = fault.abort;
  if (abort) {
    const at = [...path, 'abort'];
    if (abort.percentage) checkPercentage(abort.percentage, [...at, 'percentage'], report);
    if (abort.grpcStatus !== undefined) {
      if (!GRPC_STATUSES.has(abort.grpcStatus)) {
        report.error(
          [...at, 'grpcStatus'],
          `gRPC status ${q(abort.grpcStatus)} is not supported. See https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of supported codes, for example 'NOT_FOUND'`,
        );
      }
    } else if (abort.http2Error !== undefined) {
      report.error([...at, 'http2Error'], 'HTTP/2 abort fault injection not supported yet');
    } else if (abort.httpStatus !== undefined) {
      const bad = validateHttpStatus(abort.httpStatus);
      if (bad) report.error([...at, 'httpStatus'], bad);
    } else {
      report.warn(at, 'abort configured, but error type not set');
    }
  }
  const delay = fault.delay;
  if (delay) {
    const at = [...path, 'delay'];
    if (delay.percentage) checkPercentage(delay.percentage, [...at, 'percentage'], report);
    if (delay.fixedDelay !== undefined) checkDuration(delay.fixedDelay, [...at, 'fixedDelay'], report);
    else if (delay.exponentialDelay !== undefined) {
      checkDuration(delay.exponentialDelay, [...at, 'exponentialDelay'], report);
      report.error([...at, 'exponentialDelay'], 'exponentialDelay not supported yet');
    }
  }
}

function checkMirrors(route: HTTPRoute, path: FieldPath, report: RuleReport): void {
  for (const field of ['mirrorPercent', 'mirror_percent'] as const) {
    const value = route[field];
    if (value === undefined || value === null) continue;
    if (value > 100) report.error([...path, field], `mirror_percent must have a max value of 100 (it has ${value})`);
    report.warn([...path, field], 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead', 'deprecated');
  }
  if (route.mirrorPercentage) {
    const value = route.mirrorPercentage.value ?? 0;
    const at = [...path, 'mirrorPercentage', 'value'];
    if (value > 100) report.error(at, `mirror_percentage must have a max value of 100 (it has ${goFloat(value)})`);
    if (value < 0) report.error(at, `mirror_percentage must have a min value of 0 (it has ${goFloat(value)})`);
  }
  checkDestination(route.mirror, [...path, 'mirror'], report);
  route.mirrors?.forEach((mirror, i) => {
    const at = [...path, 'mirrors', i];
    checkDestination(mirror.destination, [...at, 'destination'], report);
    const value = mirror.percentage?.value;
    if (value === undefined) return;
    if (value > 100) report.error([...at, 'percentage', 'value'], `mirror percentage must have a max value of 100 (it has ${goFloat(value)})`);
    if (value < 0) report.error([...at, 'percentage', 'value'], `mirror percentage must have a min value of 0 (it has ${goFloat(value)})`);
  });
}

/** validateHTTPRedirect: reports the first problem only, as Istio does. */
function checkRedirect(redirect: HTTPRedirect | undefined, matches: readonly HTTPMatchRequest[] | undefined, path: FieldPath, report: RuleReport): void {
  if (!redirect) return;
  const problem = redirectProblem(redirect, matches);
  if (problem) report.error([...path, ...problem.field], problem.message);
}

function redirectProblem(redirect: HTTPRedirect, matches: readonly HTTPMatchRequest[] | undefined): { field: FieldPath; message: string } | undefined {
  if (redirect.uri && redirect.prefixRewrite) return { field: [], message: 'redirect may only specify one of uri or prefix_rewrite' };
  if (redirect.prefixRewrite && matches?.some((m) => m.uri && m.uri.prefix === undefined)) {
    return { field: ['prefixRewrite'], message: 'redirect prefix_rewrite requires all URI matches to use prefix match type' };
  }
  if (!redirect.uri && !redirect.prefixRewrite && !redirect.authority && redirect.port === undefined && redirect.derivePort === undefined && !redirect.scheme) {
    return { field: [], message: 'redirect must specify URI, authority, scheme, or port' };
  }
  if (redirect.redirectCode && (redirect.redirectCode < 300 || redirect.redirectCode > 399)) {
    return { field: ['redirectCode'], message: `${redirect.redirectCode} is not a valid redirect code, must be 3xx` };
  }
  if (redirect.scheme && redirect.scheme !== 'http' && redirect.scheme !== 'https') {
    return { field: ['scheme'], message: 'invalid redirect scheme, must be "http" or "https"' };
  }
  if (redirect.port !== undefined && redirect.port > 65535) {
    return { field: ['port'], message: `port number ${redirect.port} must be in the range 1..65535` };
  }
  return undefined;
}

function checkDirectResponse(response: HTTPDirectResponse | undefined, path: FieldPath, report: RuleReport): void {
  if (!response) return;
  const body = response.body;
  if (body) {
    const size = body.string !== undefined ? Buffer.byteLength(body.string) : body.bytes !== undefined ? Buffer.from(body.bytes, 'base64').length : 0;
    if (size > MB) report.error([...path, 'body'], 'large direct_responses may impact control plane performance, must be less than 1MB');
    else if (size > 100 * KB) report.warn([...path, 'body'], 'large direct_responses may impact control plane performance');
  }
  const bad = validateHttpStatus(response.status);
  if (bad) report.error([...path, 'status'], bad);
}

/** agent.ValidateHTTPRetry. */
function checkRetries(retries: HTTPRetry | undefined, path: FieldPath, report: RuleReport): void {
  if (!retries) return;
  const attempts = retries.attempts ?? 0;
  if (attempts < 0) report.error([...path, 'attempts'], 'attempts cannot be negative');
  const configured =
    retries.perTryTimeout !== undefined || !!retries.retryOn || (retries.retryRemoteLocalities !== undefined && retries.retryRemoteLocalities !== null);
  if (attempts === 0 && configured) report.error(path, 'http retry policy configured when attempts are set to 0 (disabled)');
  checkDuration(retries.perTryTimeout, [...path, 'perTryTimeout'], report);
  if (retries.retryOn) checkRetryOn(retries.retryOn, [...path, 'retryOn'], report);
  checkDuration(retries.backoff, [...path, 'backoff'], report);
}

function checkRewrite(rewrite: HTTPRewrite | undefined, headers: Headers | undefined, path: FieldPath, report: RuleReport): void {
  const at = [...path, 'rewrite'];
  if (rewrite) {
    const regex = rewrite.uriRegexRewrite;
    if (rewrite.uri && regex) report.error(at, 'rewrite may only contain one of URI or UriRegexRewrite');
    else if (!rewrite.uri && !regex && !rewrite.authority) {
      report.error(at, 'rewrite must specify at least one of URI, UriRegexRewrite, or authority. Only one of URI or UriRegexRewrite may be specified');
    } else if (regex) {
      if (!regex.match || !regex.rewrite) {
        report.error([...at, 'uriRegexRewrite'], 'UriRegexRewrite has errors: UriRegexRewrite requires both Rewrite and Match fields to be specified');
      } else checkRegex(regex.match, 'HTTPRewrite.UriRegexRewrite.Match', [...at, 'uriRegexRewrite', 'match'], report);
    }
  }
  // The authority is rewritten in one place only (validateAuthorityRewrite).
  let current = rewrite?.authority ?? '';
  for (const op of ['set', 'add'] as const) {
    for (const [name, value] of Object.entries(headers?.request?.[op] ?? {})) {
      if (!isAuthorityHeader(name)) continue;
      if (current !== '') {
        report.error(
          [...path, 'headers', 'request', op, name],
          `authority header cannot be set multiple times: have ${q(current)}, attempting to set ${q(value)}`,
        );
        return;
      }
      current = value;
    }
  }
}

function checkDestinations(destinations: readonly HTTPRouteDestination[] | undefined, path: FieldPath, report: RuleReport): void {
  if (!destinations) return;
  let total = 0;
  destinations.forEach((d, i) => {
    checkHeaderOperations(d.headers, [...path, i, 'headers'], report);
    checkDestination(d.destination, [...path, i, 'destination'], report);
    const weight = d.weight ?? 0;
    if (weight < 0) report.error([...path, i, 'weight'], `weight ${weight} < 0`);
    total += weight;
  });
  if (destinations.length > 1 && total === 0) report.error(path, 'total destination weight = 0');
}

/** validateRouteDestinations, for tcp and tls routes (which carry no header operations). */
export const checkRouteDestinations = checkDestinations;
