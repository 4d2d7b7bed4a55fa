import type { RouteRequest, RouteSource } from './route-request.js';
import { parseQuery } from './route-request.js';
import type { StringMatchSpec, StringMatcher } from './string-match.js';
import { compileStringMatch } from './string-match.js';

/** The parts of Istio's HTTPMatchRequest that route matching reads. */
export interface HttpMatchSpec {
  readonly name?: string;
  readonly uri?: StringMatchSpec;
  readonly scheme?: StringMatchSpec;
  readonly method?: StringMatchSpec;
  readonly authority?: StringMatchSpec;
  readonly headers?: Readonly<Record<string, StringMatchSpec>>;
  readonly withoutHeaders?: Readonly<Record<string, StringMatchSpec>>;
  readonly queryParams?: Readonly<Record<string, StringMatchSpec>>;
  readonly port?: number;
  readonly ignoreUriCase?: boolean;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly sourceNamespace?: string;
  readonly gateways?: readonly string[];
}

interface NamedMatcher {
  readonly name: string;
  readonly matcher: StringMatcher;
}

/**
 * One compiled `match` entry: every condition must hold (AND). Conditions on the caller itself
 * (sourceLabels, sourceNamespace, gateways) are decided when the snapshot is built, since a mesh
 * instance is one workload; a match that can never apply to it compiles to `never`.
 */
export interface CompiledHttpMatch {
  readonly name: string | undefined;
  readonly never: boolean;
  test(request: RouteRequest, query: QueryCache): boolean;
  /** Human-readable conditions, for `explain`. */
  readonly conditions: readonly string[];
}

/** Parses the query string at most once per request, and only when a route needs it. */
export class QueryCache {
  private parsed: Map<string, string> | undefined;
  constructor(private readonly query: string) {}
  get(name: string): string | undefined {
    this.parsed ??= parseQuery(this.query);
    return this.parsed.get(name);
  }
}

function compileHeaderMatchers(specs: Readonly<Record<string, StringMatchSpec>> | undefined, starIsPresence = false): NamedMatcher[] {
  if (!specs) return [];
  return Object.entries(specs).map(([name, spec]) => ({
    name: name.toLowerCase(),
    // istiod turns a withoutHeaders `regex: "*"` into Envoy's present_match (then inverted).
    matcher: compileStringMatch(starIsPresence && spec.regex === '*' ? {} : spec),
  }));
}

export function compileHttpMatch(spec: HttpMatchSpec, source: RouteSource): CompiledHttpMatch {
  const conditions: string[] = [];
  let never = false;
  if (spec.gateways && spec.gateways.length > 0 && !spec.gateways.includes('mesh')) {
    never = true;
    conditions.push(`gateways ${spec.gateways.join(',')} (not mesh: never applies to a client)`);
  }
  if (spec.sourceNamespace !== undefined) {
    conditions.push(`sourceNamespace ${spec.sourceNamespace}`);
    if (spec.sourceNamespace !== source.namespace) never = true;
  }
  if (spec.sourceLabels) {
    const entries = Object.entries(spec.sourceLabels);
    conditions.push(`sourceLabels ${entries.map(([k, v]) => `${k}=${v}`).join(',')}`);
    if (entries.some(([k, v]) => source.labels[k] !== v)) never = true;
  }

  const uri = spec.uri ? compileStringMatch(spec.uri, spec.ignoreUriCase === true) : undefined;
  const scheme = spec.scheme ? compileStringMatch(spec.scheme) : undefined;
  const method = spec.method ? compileStringMatch(spec.method) : undefined;
  const authority = spec.authority ? compileStringMatch(spec.authority) : undefined;
  const headers = compileHeaderMatchers(spec.headers);
  const without = compileHeaderMatchers(spec.withoutHeaders, true);
  // Query parameter names are case-sensitive, unlike header names.
  const queryMatchers: NamedMatcher[] = spec.queryParams ? Object.entries(spec.queryParams).map(([name, s]) => ({ name, matcher: compileStringMatch(s) })) : [];
  const port = spec.port;

  if (uri) conditions.push(`uri ${uri.describe}`);
  if (scheme) conditions.push(`scheme ${scheme.describe}`);
  if (method) conditions.push(`method ${method.describe}`);
  if (authority) conditions.push(`authority ${authority.describe}`);
  for (const h of headers) conditions.push(`header ${h.name} ${h.matcher.describe}`);
  for (const h of without) conditions.push(`without header ${h.name} ${h.matcher.describe}`);
  for (const q of queryMatchers) conditions.push(`query ${q.name} ${q.matcher.describe}`);
  if (port !== undefined) conditions.push(`port ${port}`);

  const test = (request: RouteRequest, queryCache: QueryCache): boolean => {
    if (never) return false;
    if (port !== undefined && request.port !== port) return false;
    if (method && !method.test(request.method)) return false;
    if (uri && !uri.test(request.path)) return false;
    if (scheme && !scheme.test(request.scheme)) return false;
    if (authority && !authority.test(request.authority)) return false;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i]!;
      const value = request.header(h.name);
      if (value === undefined || !h.matcher.test(value)) return false;
    }
    for (let i = 0; i < without.length; i++) {
      const h = without[i]!;
      const value = request.header(h.name);
      if (value !== undefined && h.matcher.test(value)) return false;
    }
    for (let i = 0; i < queryMatchers.length; i++) {
      const q = queryMatchers[i]!;
      const value = queryCache.get(q.name);
      if (value === undefined || !q.matcher.test(value)) return false;
    }
    return true;
  };
  return { name: spec.name, never, test, conditions };
}
