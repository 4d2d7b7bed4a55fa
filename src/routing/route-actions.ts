import { loadRe2 } from '../match/regex.js';
import { parseDuration } from '../duration.js';
import type { HttpRetrySpec, RetryPolicy } from '../resilience/retry-policy.js';
import { compileRetryPolicy } from '../resilience/retry-policy.js';
import type { CompiledDestination, CompiledHttpRoute } from './route-table.js';

interface HeaderOperationsSpec {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

interface HeadersSpec {
  readonly request?: HeaderOperationsSpec;
  readonly response?: HeaderOperationsSpec;
}

/** One header write: `append` false replaces (Istio `set`), true appends (Istio `add`). */
export interface HeaderWrite {
  readonly name: string;
  readonly value: string;
  readonly append: boolean;
}

/**
 * Header changes compiled to lower-case names once. Applied as Envoy's header parser applies
 * them: every removal first, then the writes in order (`set` entries, then `add` entries).
 */
export interface HeaderOps {
  readonly remove: readonly string[];
  readonly write: readonly HeaderWrite[];
}

export interface FaultActions {
  readonly delayMs: number;
  /** Fraction in [0, 1] of requests delayed. */
  readonly delayFraction: number;
  /** HTTP status of an abort; 200 for a gRPC abort (Envoy's choice), 0 without abort. */
  readonly abortStatus: number;
  /** gRPC status code of an abort, or undefined for an HTTP abort. */
  readonly abortGrpcStatus: number | undefined;
  readonly abortFraction: number;
}

export interface RedirectAction {
  readonly status: number;
  location(scheme: string, authority: string, port: number, path: string, query: string): string;
}

/**
 * What a request sent to one weighted destination gets: the route's header rules merged with the
 * destination's own, in Envoy's order, and the authority rewrite that wins.
 */
export interface DestinationActions {
  /** New Host / :authority, or undefined to keep the caller's. */
  readonly authority: string | undefined;
  /** Request header rules, applied in order. */
  readonly request: readonly HeaderOps[];
  /** Response header rules, applied in order. */
  readonly response: readonly HeaderOps[];
}

/** Everything a route does besides choosing a destination, compiled once per route. */
export interface RouteActions {
  readonly directResponse: { readonly status: number; readonly body: string } | undefined;
  readonly redirect: RedirectAction | undefined;
  /** New path for a request that matched entry `matchIndex`, or undefined to keep it. */
  rewritePath(path: string, matchIndex: number): string | undefined;
  /** Route-level authority rewrite (`rewrite.authority`, else a `host` header rule). */
  readonly authority: string | undefined;
  /** Route-level rules only (local replies; destinations have theirs in {@link destination}). */
  readonly requestHeaders: HeaderOps | undefined;
  readonly responseHeaders: HeaderOps | undefined;
  /** The rules for a request sent to `destination` (one of the route's own). */
  destination(destination: CompiledDestination): DestinationActions;
  readonly fault: FaultActions | undefined;
  /** Route timeout in ms; 0 means none (Istio's default). */
  readonly timeoutMs: number;
  /** The retry policy istiod would give the route (its default when `retries` is unset); undefined: off. */
  readonly retry: RetryPolicy | undefined;
}

const cache = new WeakMap<CompiledHttpRoute, RouteActions>();

export function routeActions(route: CompiledHttpRoute): RouteActions {
  let actions = cache.get(route);
  if (!actions) {
    actions = compileRouteActions(route);
    cache.set(route, actions);
  }
  return actions;
}

/** istiod never writes pseudo-headers or Host as headers: a Host rule becomes an authority rewrite. */
function isInternalHeader(name: string): boolean {
  return name.startsWith(':') || name === 'host';
}

function isAuthorityHeader(name: string): boolean {
  return name === ':authority' || name === 'host';
}

/** Compiles one `headers.request` / `headers.response` block; undefined when it does nothing. */
export function compileHeaderOps(spec: HeaderOperationsSpec | undefined): HeaderOps | undefined {
  if (!spec) return undefined;
  const write: HeaderWrite[] = [];
  const push = (entries: Readonly<Record<string, string>> | undefined, append: boolean) => {
    for (const [name, value] of Object.entries(entries ?? {})) {
      const lower = name.toLowerCase();
      if (!isInternalHeader(lower)) write.push({ name: lower, value, append });
    }
  };
  push(spec.set, false);
  push(spec.add, true);
  const remove = (spec.remove ?? []).map((h) => h.toLowerCase()).filter((h) => !isInternalHeader(h));
  return write.length === 0 && remove.length === 0 ? undefined : { remove, write };
}

/** A `host` / `:authority` request header rule, which istiod turns into a host rewrite (`set` over `add`). */
function authorityOf(spec: HeaderOperationsSpec | undefined): string | undefined {
  const find = (entries: Readonly<Record<string, string>> | undefined) =>
    Object.entries(entries ?? {}).find(([name]) => isAuthorityHeader(name.toLowerCase()))?.[1];
  return find(spec?.set) ?? find(spec?.add);
}

/** One header parser made of two lists, as istiod appends a lone destination's rules to the route's. */
function mergeOps(first: HeaderOps | undefined, second: HeaderOps | undefined): HeaderOps | undefined {
  if (!first || !second) return first ?? second;
  return { remove: [...first.remove, ...second.remove], write: [...first.write, ...second.write] };
}

function list(...ops: (HeaderOps | undefined)[]): readonly HeaderOps[] {
  return ops.filter((o): o is HeaderOps => o !== undefined);
}

/**
 * Per-destination rules, as istiod builds them. A route with one destination gets the
 * destination's rules appended to its own (one parser: the destination's `set` wins). With several
 * destinations they go on the weighted cluster, which Envoy evaluates before the route's (the
 * route's `set` wins). Either way a route-level authority rewrite beats the destination's.
 */
function compileDestinationActions(
  route: CompiledHttpRoute,
  routeAuthority: string | undefined,
  routeRequest: HeaderOps | undefined,
  routeResponse: HeaderOps | undefined,
): Map<CompiledDestination, DestinationActions> {
  const out = new Map<CompiledDestination, DestinationActions>();
  const single = route.destinations.length === 1;
  for (const destination of route.destinations) {
    const headers = destination.spec.headers as HeadersSpec | undefined;
    const request = compileHeaderOps(headers?.request);
    const response = compileHeaderOps(headers?.response);
    out.set(destination, {
      authority: routeAuthority ?? authorityOf(headers?.request),
      request: single ? list(mergeOps(routeRequest, request)) : list(request, routeRequest),
      response: single ? list(mergeOps(routeResponse, response)) : list(response, routeResponse),
    });
  }
  return out;
}

/** Istio's names for gRPC status codes (`fault.abort.grpcStatus`). */
const GRPC_STATUS: Readonly<Record<string, number>> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

/** A percentage as a fraction in [0, 1]. */
function fraction(percent: number | undefined): number {
  return percent === undefined ? 0 : Math.min(100, Math.max(0, percent)) / 100;
}

interface RouteSpecView {
  readonly match?: readonly { readonly uri?: { readonly prefix?: string; readonly pathPrefix?: string } }[];
  /** `replacePrefixMatch`: an HTTPRoute's URLRewrite of its PathPrefix match (never in an Istio document). */
  readonly rewrite?: {
    readonly uri?: string;
    readonly authority?: string;
    readonly uriRegexRewrite?: { readonly match?: string; readonly rewrite?: string };
    readonly replacePrefixMatch?: string;
  };
  readonly redirect?: {
    readonly uri?: string;
    readonly authority?: string;
    readonly port?: number;
    readonly derivePort?: string;
    readonly scheme?: string;
    readonly redirectCode?: number;
    readonly replacePrefixMatch?: string;
  };
  readonly directResponse?: { readonly status: number; readonly body?: { readonly string?: string; readonly bytes?: string } };
  readonly headers?: HeadersSpec;
  readonly fault?: {
    readonly delay?: { readonly fixedDelay?: string; readonly exponentialDelay?: string; readonly percentage?: { value?: number }; readonly percent?: number };
    readonly abort?: { readonly httpStatus?: number; readonly grpcStatus?: string; readonly http2Error?: string; readonly percentage?: { value?: number } };
  };
  readonly timeout?: string;
  readonly retries?: HttpRetrySpec;
}

/**
 * `fault` as istiod translates it for Envoy's fault filter. An unset percentage is 0%: nothing
 * is delayed or aborted (istio/api#2522 documents it; the deprecated integer `percent` of a delay
 * is read when `percentage` is unset). An exponential delay and an `http2Error` abort are dropped,
 * as istiod drops them.
 */
function compileFault(fault: RouteSpecView['fault']): FaultActions | undefined {
  if (!fault) return undefined;
  const delay = fault.delay?.fixedDelay ? fault.delay : undefined;
  const delayMs = delay?.fixedDelay ? (parseDuration(delay.fixedDelay) ?? 0) : 0;
  const delayFraction = delay ? fraction(delay.percentage ? (delay.percentage.value ?? 0) : delay.percent) : 0;
  const abort = fault.abort;
  const grpc = abort?.httpStatus === undefined && abort?.grpcStatus !== undefined ? GRPC_STATUS[abort.grpcStatus] : undefined;
  const abortStatus = abort?.httpStatus ?? (grpc !== undefined ? 200 : 0);
  const abortFraction = abortStatus > 0 ? fraction(abort?.percentage?.value) : 0;
  if ((delayMs <= 0 || delayFraction <= 0) && abortFraction <= 0) return undefined;
  return { delayMs, delayFraction: delayMs > 0 ? delayFraction : 0, abortStatus, abortGrpcStatus: grpc, abortFraction };
}

function compileRouteActions(route: CompiledHttpRoute): RouteActions {
  const spec = route.spec as RouteSpecView;
  const rewrite = spec.rewrite;
  let rewritePath: RouteActions['rewritePath'] = () => undefined;
  if (rewrite?.uriRegexRewrite?.match !== undefined) {
    const re = loadRe2().RE2JS.compile(rewrite.uriRegexRewrite.match);
    // Envoy's regex_rewrite substitutes every match; Istio writes groups as \1.
    const replacement = (rewrite.uriRegexRewrite.rewrite ?? '').replace(/\\(\d)/g, '$$$1');
    rewritePath = (path) => re.matcher(path).replaceAll(replacement);
  } else if (rewrite?.replacePrefixMatch !== undefined) {
    const value = rewrite.replacePrefixMatch;
    const prefix = spec.match?.[0]?.uri?.pathPrefix ?? '/';
    rewritePath = (path) => replacePathPrefix(path, prefix, value);
  } else if (rewrite?.uri !== undefined) {
    const value = rewrite.uri;
    const prefixes = (spec.match ?? []).map((m) => m.uri?.prefix);
    // Istio: a prefix match has just that prefix replaced; otherwise the whole path is.
    rewritePath = (path, matchIndex) => {
      const prefix = matchIndex >= 0 ? prefixes[matchIndex] : undefined;
      return prefix !== undefined ? value + path.slice(prefix.length) : value;
    };
  }

  const redirect = spec.redirect;
  const redirectPrefix = spec.match?.[0]?.uri?.pathPrefix ?? '/';
  const direct = spec.directResponse;
  const requestHeaders = compileHeaderOps(spec.headers?.request);
  const responseHeaders = compileHeaderOps(spec.headers?.response);
  // istiod: `rewrite.authority` beats a Host header rule of the route.
  const authority = rewrite?.authority || authorityOf(spec.headers?.request) || undefined;
  const perDestination = compileDestinationActions(route, authority, requestHeaders, responseHeaders);
  const fallback: DestinationActions = { authority, request: list(requestHeaders), response: list(responseHeaders) };
  return {
    directResponse: direct
      ? { status: direct.status, body: direct.body?.string ?? (direct.body?.bytes ? Buffer.from(direct.body.bytes, 'base64').toString() : '') }
      : undefined,
    redirect: redirect
      ? {
          status: redirect.redirectCode ?? 301,
          location: (scheme, authority, port, path, query) => {
            const outScheme = redirect.scheme ?? scheme;
            const host = redirect.authority ?? authority.replace(/:\d+$/, '');
            // Envoy's host_redirect replaces host and port: the caller's port stays only without one.
            const outPort =
              redirect.port ??
              (redirect.derivePort === 'FROM_REQUEST_PORT'
                ? port
                : redirect.derivePort === 'FROM_PROTOCOL_DEFAULT' || redirect.authority !== undefined
                  ? undefined
                  : portOf(authority));
            const defaultPort = outScheme === 'https' ? 443 : 80;
            const portPart = outPort !== undefined && outPort !== defaultPort ? `:${outPort}` : '';
            const outPath =
              redirect.uri ?? (redirect.replacePrefixMatch !== undefined ? replacePathPrefix(path, redirectPrefix, redirect.replacePrefixMatch) : path);
            return `${outScheme}://${host}${portPart}${outPath}${query ? `?${query}` : ''}`;
          },
        }
      : undefined,
    rewritePath,
    authority,
    requestHeaders,
    responseHeaders,
    destination: (destination) => perDestination.get(destination) ?? fallback,
    fault: compileFault(spec.fault),
    timeoutMs: spec.timeout ? (parseDuration(spec.timeout) ?? 0) : 0,
    retry: compileRetryPolicy(spec.retries),
  };
}

/**
 * The Gateway API's ReplacePrefixMatch: the matched path elements are replaced, and a `/` is not
 * doubled (`/foo` to `/` turns `/foo/bar` into `/bar`, and `/foo` into `/`).
 */
function replacePathPrefix(path: string, prefix: string, value: string): string {
  const matched = prefix.replace(/\/+$/, '');
  const rest = path.slice(matched.length);
  const out = value.replace(/\/+$/, '') + rest;
  return out === '' ? '/' : out;
}

function portOf(authority: string): number | undefined {
  const m = /:(\d+)$/.exec(authority);
  return m ? Number(m[1]) : undefined;
}

/** Applies header operations to a header record in place: removals, then writes in order. */
export function applyHeaderOps(headers: Record<string, string | string[]>, ops: HeaderOps): void {
  for (const name of ops.remove) delete headers[name];
  for (const { name, value, append } of ops.write) {
    const prior = append ? headers[name] : undefined;
    headers[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
}
