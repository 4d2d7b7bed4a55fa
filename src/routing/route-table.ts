import type { ResourceRef } from '../issue.js';
import type { CompiledHttpMatch, HttpMatchSpec } from '../match/http-match.js';
import { QueryCache, compileHttpMatch } from '../match/http-match.js';
import type { CompiledMirror, MirrorSpecView } from './mirror-policy.js';
import { compileMirrors } from './mirror-policy.js';
import type { RouteRequest, RouteSource } from '../match/route-request.js';
import type { TlsRouteSpec } from './tls-route.js';

/** Istio's Destination as written in a route. */
export interface DestinationSpec {
  readonly host: string;
  readonly subset?: string;
  readonly port?: { readonly number?: number };
}

export interface RouteDestinationSpec {
  readonly destination: DestinationSpec;
  readonly weight?: number;
  readonly headers?: unknown;
}

/** The parts of Istio's HTTPRoute that compilation reads; the rest is kept in `spec`. */
export interface HttpRouteSpec {
  readonly name?: string;
  readonly match?: readonly HttpMatchSpec[];
  readonly route?: readonly RouteDestinationSpec[];
  readonly delegate?: { readonly name?: string; readonly namespace?: string };
  readonly redirect?: unknown;
  readonly directResponse?: unknown;
  readonly timeout?: string;
  readonly retries?: unknown;
  readonly fault?: unknown;
  readonly rewrite?: unknown;
  readonly headers?: unknown;
  readonly mirror?: DestinationSpec;
  readonly mirrorPercentage?: MirrorSpecView['mirrorPercentage'];
  readonly mirrorPercent?: number | null;
  readonly mirror_percent?: number | null;
  readonly mirrors?: MirrorSpecView['mirrors'];
}

/** A destination with its host already qualified relative to the resource that named it. */
export interface CompiledDestination {
  /** Fully qualified service host. */
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number | undefined;
  /** Weight as configured (normalised to a share by `share`). */
  readonly weight: number;
  /** Fraction of traffic in [0, 1]. */
  readonly share: number;
  readonly spec: RouteDestinationSpec;
}

/** One `http[]` entry of a VirtualService, compiled. */
export interface CompiledHttpRoute {
  readonly name: string | undefined;
  /** Position in the (delegate-expanded) route list; `http[i]` of `resource`. */
  readonly index: number;
  /** The VirtualService that wrote this entry (a delegate's own for delegated routes). */
  readonly resource: ResourceRef;
  /** `spec.http[i]` path within `resource`. */
  readonly path: string;
  /** OR of entries; empty means the route matches every request. */
  readonly matches: readonly CompiledHttpMatch[];
  readonly destinations: readonly CompiledDestination[];
  /** Cumulative weights for picking; the last entry is the total. */
  readonly cumulative: readonly number[];
  /** `mirror` and `mirrors[]`, hosts qualified like destinations. */
  readonly mirrors: readonly CompiledMirror[];
  readonly spec: HttpRouteSpec;
}

export interface RouteTable {
  /** The VirtualService (or HTTPRoute) that owns the host. */
  readonly resource: ResourceRef;
  readonly routes: readonly CompiledHttpRoute[];
  /**
   * Set when every route matches on `port`: the table covers calls on these ports only. On another
   * port Istio builds no route from it, and the service's default route applies.
   */
  readonly ports?: ReadonlySet<number>;
  /** The VirtualService's `tls` routes, for its hosts' TLS and HTTPS ports (compiled per port). */
  readonly tls?: readonly TlsRouteSpec[];
}

/** The table for a call on `port`: none when its routes are all for other ports. */
export function tableForPort(table: RouteTable | undefined, port: number): RouteTable | undefined {
  return table?.ports && !table.ports.has(port) ? undefined : table;
}

/** The ports a table is limited to, when every match of every route names one. */
export function portsOf(routes: readonly CompiledHttpRoute[]): ReadonlySet<number> | undefined {
  const ports = new Set<number>();
  for (const route of routes) {
    const matches = route.spec.match ?? [];
    if (matches.length === 0) return undefined;
    for (const m of matches) {
      if (m.port === undefined) return undefined;
      ports.add(m.port);
    }
  }
  return routes.length > 0 ? ports : undefined;
}

/** Weights as Istio reads them: a lone destination takes everything; unset weights are 0. */
export function compileDestinations(
  route: readonly RouteDestinationSpec[] | undefined,
  qualify: (host: string) => string,
): { destinations: CompiledDestination[]; cumulative: number[] } {
  const list = route ?? [];
  const weights = list.length === 1 ? [list[0]!.weight || 100] : list.map((r) => r.weight ?? 0);
  let total = weights.reduce((a, b) => a + b, 0);
  // All weights unset (or zero) with several destinations: Istio rejects it; split evenly rather
  // than send nothing, the validator reports it.
  const even = total === 0 && list.length > 0;
  if (even) total = list.length;
  const cumulative: number[] = [];
  let running = 0;
  const destinations = list.map((r, i) => {
    const weight = even ? 1 : weights[i]!;
    running += weight;
    cumulative.push(running);
    return {
      host: qualify(r.destination.host),
      subset: r.destination.subset,
      port: r.destination.port?.number,
      weight: even ? 0 : weight,
      share: total > 0 ? weight / total : 0,
      spec: r,
    };
  });
  return { destinations, cumulative };
}

export interface CompileRouteInput {
  readonly spec: HttpRouteSpec;
  readonly resource: ResourceRef;
  readonly path: string;
  /** Qualifies destination hosts relative to `resource`'s namespace. */
  readonly qualify: (host: string) => string;
}

export function compileHttpRoute(input: CompileRouteInput, index: number, source: RouteSource): CompiledHttpRoute {
  const { spec } = input;
  const { destinations, cumulative } = compileDestinations(spec.route, input.qualify);
  return {
    name: spec.name,
    index,
    resource: input.resource,
    path: input.path,
    matches: (spec.match ?? []).map((m) => compileHttpMatch(m, source)),
    destinations,
    cumulative,
    mirrors: compileMirrors(spec, input.qualify),
    spec,
  };
}

/**
 * First route whose match list has an entry that holds (Istio: first matching http entry wins;
 * conditions AND inside an entry, OR across entries). Returns the route and the index of the
 * matching entry (-1 when the route has no conditions).
 */
export function matchRoute(table: RouteTable, request: RouteRequest): RouteHit | undefined {
  const query = new QueryCache(request.query);
  const routes = table.routes;
  for (let i = 0; i < routes.length; i++) {
    const route = routes[i]!;
    const matches = route.matches;
    if (matches.length === 0) return new RouteHit(route, -1);
    for (let j = 0; j < matches.length; j++) {
      if (matches[j]!.test(request, query)) return new RouteHit(route, j);
    }
  }
  return undefined;
}

/** The route a request matched. A class, as every per-request object is (docs/decisions.md, "No per-request literals"). */
export class RouteHit {
  constructor(
    readonly route: CompiledHttpRoute,
    /** The entry of `route.matches` that held; -1 when the route has no conditions. */
    readonly matchIndex: number,
  ) {}
}

/** Picks a weighted destination with a uniform random number in [0, 1). */
export function pickDestination(route: CompiledHttpRoute, random: number): CompiledDestination | undefined {
  const cumulative = route.cumulative;
  const n = cumulative.length;
  if (n <= 1) return route.destinations[0];
  const target = random * cumulative[n - 1]!;
  for (let i = 0; i < n; i++) if (target < cumulative[i]!) return route.destinations[i];
  return route.destinations[n - 1];
}
