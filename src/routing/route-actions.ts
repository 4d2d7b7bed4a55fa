import { RE2JS } from 're2js';
import { parseDuration } from '../config/validate/index.js';
import type { CompiledHttpRoute } from './route-table.js';

interface HeaderOperationsSpec {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

/** Header changes compiled to lower-case names once. */
export interface HeaderOps {
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
  readonly remove: readonly string[];
}

export interface FaultActions {
  readonly delayMs: number;
  /** Fraction in [0, 1] of requests delayed. */
  readonly delayFraction: number;
  readonly abortStatus: number;
  readonly abortFraction: number;
}

export interface RedirectAction {
  readonly status: number;
  location(scheme: string, authority: string, port: number, path: string, query: string): string;
}

/** Everything a route does besides choosing a destination, compiled once per route. */
export interface RouteActions {
  readonly directResponse: { readonly status: number; readonly body: string } | undefined;
  readonly redirect: RedirectAction | undefined;
  /** New path for a request that matched entry `matchIndex`, or undefined to keep it. */
  rewritePath(path: string, matchIndex: number): string | undefined;
  readonly authority: string | undefined;
  readonly requestHeaders: HeaderOps | undefined;
  readonly responseHeaders: HeaderOps | undefined;
  readonly fault: FaultActions | undefined;
  /** Route timeout in ms; 0 means none (Istio's default). */
  readonly timeoutMs: number;
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

export function compileHeaderOps(spec: HeaderOperationsSpec | undefined): HeaderOps | undefined {
  if (!spec || (!spec.set && !spec.add && !spec.remove)) return undefined;
  const lower = (o: Readonly<Record<string, string>> | undefined) =>
    Object.entries(o ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const);
  return { set: lower(spec.set), add: lower(spec.add), remove: (spec.remove ?? []).map((h) => h.toLowerCase()) };
}

function percentOf(spec: { percentage?: { value?: number }; percent?: number } | undefined): number {
  if (!spec) return 1;
  if (spec.percentage?.value !== undefined) return Math.min(100, Math.max(0, spec.percentage.value)) / 100;
  if (spec.percent !== undefined) return Math.min(100, Math.max(0, spec.percent)) / 100;
  return 1; // Istio: unset percentage means every request.
}

interface RouteSpecView {
  readonly match?: readonly { readonly uri?: { readonly prefix?: string } }[];
  readonly rewrite?: { readonly uri?: string; readonly authority?: string; readonly uriRegexRewrite?: { readonly match?: string; readonly rewrite?: string } };
  readonly redirect?: { readonly uri?: string; readonly authority?: string; readonly port?: number; readonly derivePort?: string; readonly scheme?: string; readonly redirectCode?: number };
  readonly directResponse?: { readonly status: number; readonly body?: { readonly string?: string; readonly bytes?: string } };
  readonly headers?: { readonly request?: HeaderOperationsSpec; readonly response?: HeaderOperationsSpec };
  readonly fault?: {
    readonly delay?: { readonly fixedDelay?: string; readonly percentage?: { value?: number }; readonly percent?: number };
    readonly abort?: { readonly httpStatus?: number; readonly percentage?: { value?: number } };
  };
  readonly timeout?: string;
}

function compileRouteActions(route: CompiledHttpRoute): RouteActions {
  const spec = route.spec as RouteSpecView;
  const rewrite = spec.rewrite;
  let rewritePath: RouteActions['rewritePath'] = () => undefined;
  if (rewrite?.uriRegexRewrite?.match !== undefined) {
    const re = RE2JS.compile(rewrite.uriRegexRewrite.match);
    // Envoy's regex_rewrite substitutes every match; Istio writes groups as \1.
    const replacement = (rewrite.uriRegexRewrite.rewrite ?? '').replace(/\\(\d)/g, '$$$1');
    rewritePath = (path) => re.matcher(path).replaceAll(replacement);
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
  const direct = spec.directResponse;
  const fault = spec.fault;
  const delayMs = fault?.delay?.fixedDelay ? (parseDuration(fault.delay.fixedDelay) ?? 0) : 0;
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
            const outPort =
              redirect.port ?? (redirect.derivePort === 'FROM_REQUEST_PORT' ? port : redirect.derivePort === 'FROM_PROTOCOL_DEFAULT' ? undefined : portOf(authority));
            const defaultPort = outScheme === 'https' ? 443 : 80;
            const portPart = outPort !== undefined && outPort !== defaultPort ? `:${outPort}` : '';
            return `${outScheme}://${host}${portPart}${redirect.uri ?? path}${query ? `?${query}` : ''}`;
          },
        }
      : undefined,
    rewritePath,
    authority: rewrite?.authority,
    requestHeaders: compileHeaderOps(spec.headers?.request),
    responseHeaders: compileHeaderOps(spec.headers?.response),
    fault:
      fault && (fault.delay || fault.abort)
        ? {
            delayMs,
            delayFraction: fault.delay ? percentOf(fault.delay) : 0,
            abortStatus: fault.abort?.httpStatus ?? 0,
            abortFraction: fault.abort?.httpStatus ? percentOf(fault.abort) : 0,
          }
        : undefined,
    timeoutMs: spec.timeout ? (parseDuration(spec.timeout) ?? 0) : 0,
  };
}

function portOf(authority: string): number | undefined {
  const m = /:(\d+)$/.exec(authority);
  return m ? Number(m[1]) : undefined;
}

/** Applies header operations to a header record in place (set, then add, then remove). */
export function applyHeaderOps(headers: Record<string, string | string[]>, ops: HeaderOps): void {
  for (const [name, value] of ops.set) headers[name] = value;
  for (const [name, value] of ops.add) {
    const prior = headers[name];
    headers[name] = prior === undefined ? value : Array.isArray(prior) ? [...prior, value] : [prior, value];
  }
  for (const name of ops.remove) delete headers[name];
}
