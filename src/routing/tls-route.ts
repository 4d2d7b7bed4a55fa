import { isIP } from 'node:net';
import type { ResourceRef } from '../issue.js';
import type { CompiledDestination, RouteDestinationSpec } from './route-table.js';
import { compileDestinations } from './route-table.js';
import type { RouteSource } from '../match/route-request.js';

/** Istio's TLSMatchAttributes, as written. */
export interface TlsMatchSpec {
  readonly sniHosts?: readonly string[];
  readonly destinationSubnets?: readonly string[];
  readonly port?: number;
  readonly sourceLabels?: Readonly<Record<string, string>>;
  readonly sourceNamespace?: string;
  readonly gateways?: readonly string[];
}

/** Istio's TLSRoute, as written. */
export interface TlsRouteSpec {
  readonly match?: readonly TlsMatchSpec[];
  readonly route?: readonly RouteDestinationSpec[];
}

/** One `destinationSubnets` entry: its prefix length and whether it holds an address. */
export interface TlsSubnet {
  readonly text: string;
  readonly bits: number;
  has(address: string): boolean;
}

/** Compiles a `destinationSubnets` entry (CIDR matching lives with the other IP matching, in security). */
export type SubnetCompiler = (cidr: string) => TlsSubnet;

/** A match left after its static predicates held for this caller and port: what is decided per call. */
export interface CompiledTlsMatch {
  /** Lower-case; exact names or `*.suffix` wildcards. */
  readonly sniHosts: readonly string[];
  /** Destination subnets with their prefix length, longest first; empty: any address. */
  readonly subnets: readonly TlsSubnet[];
  /** The match in words (its static predicates included), for `explain`. */
  readonly conditions: string;
}

/** One `tls[]` entry of a VirtualService, compiled for one service port. */
export interface CompiledTlsRoute {
  /** `tls[i]` of `resource`. */
  readonly index: number;
  readonly resource: ResourceRef;
  /** `spec.tls[i]`. */
  readonly path: string;
  readonly matches: readonly CompiledTlsMatch[];
  readonly destinations: readonly CompiledDestination[];
  /** Cumulative weights for picking; the last entry is the total. */
  readonly cumulative: readonly number[];
  readonly spec: TlsRouteSpec;
}

/**
 * How calls to one TLS or HTTPS service port are routed: the `tls` routes that apply to it, or, when
 * none does, the service itself (istiod's filter chain for "HTTPS or TLS ports without associated
 * virtual service").
 */
export interface TlsPortRoutes {
  readonly host: string;
  readonly port: number;
  /** The port's protocol, `TLS` or `HTTPS`. */
  readonly protocol: 'TLS' | 'HTTPS';
  /** The VirtualService whose `tls` routes apply; undefined: none does, the service is the destination. */
  readonly resource: ResourceRef | undefined;
  readonly routes: readonly CompiledTlsRoute[];
  /** The service's `addresses`: where a caller naming the host connects (for `destinationSubnets`). */
  readonly addresses: readonly string[];
}

/** The static predicates istiod evaluates when it builds the listener (tls.go matchTLS). */
function staticMatch(match: TlsMatchSpec, port: number, source: RouteSource): boolean {
  const gateways = match.gateways ?? [];
  if (gateways.length > 0 && !gateways.includes('mesh')) return false;
  if (match.port !== undefined && match.port !== 0 && match.port !== port) return false;
  if (match.sourceNamespace && match.sourceNamespace !== source.namespace) return false;
  for (const [key, value] of Object.entries(match.sourceLabels ?? {})) if (source.labels[key] !== value) return false;
  return true;
}

function subnetsOf(match: TlsMatchSpec, subnet: SubnetCompiler): TlsSubnet[] {
  return (match.destinationSubnets ?? []).map(subnet).sort((a, b) => b.bits - a.bits);
}

/**
 * The `tls` routes of a VirtualService for one port: entries without destinations are skipped, and
 * matches whose static predicates fail for this caller are dropped, as are later matches with the
 * same runtime predicates (SNI hosts and subnets), which istiod never reaches.
 */
export function compileTlsRoutes(
  specs: readonly TlsRouteSpec[],
  resource: ResourceRef,
  port: number,
  source: RouteSource,
  qualify: (host: string) => string,
  subnet: SubnetCompiler,
): CompiledTlsRoute[] {
  const handled = new Set<string>();
  const out: CompiledTlsRoute[] = [];
  specs.forEach((spec, index) => {
    if (!spec.route || spec.route.length === 0) return;
    const matches: CompiledTlsMatch[] = [];
    for (const match of spec.match ?? []) {
      if (!staticMatch(match, port, source)) continue;
      const key = `${(match.sniHosts ?? []).join(',')}|${(match.destinationSubnets ?? []).join(',')}`;
      if (handled.has(key)) continue;
      handled.add(key);
      matches.push({ sniHosts: (match.sniHosts ?? []).map((h) => h.toLowerCase()), subnets: subnetsOf(match, subnet), conditions: describeTlsMatch(match) });
    }
    if (matches.length === 0) return;
    const { destinations, cumulative } = compileDestinations(spec.route, qualify);
    out.push({ index, resource, path: `spec.tls[${index}]`, matches, destinations, cumulative, spec });
  });
  return out;
}

/**
 * How well an SNI matches a list of server names, as Envoy's filter chain match ranks them: an
 * exact name beats any wildcard, a longer wildcard beats a shorter one (`*.b.example.com` covers
 * `a.b.example.com` and `x.a.b.example.com`, never `b.example.com`). -1: no match; 0: the list is
 * empty (any SNI, none included).
 */
export function sniScore(serverNames: readonly string[], sni: string | undefined): number {
  if (serverNames.length === 0) return 0;
  if (sni === undefined || sni === '') return -1;
  const name = sni.toLowerCase();
  let best = -1;
  for (const pattern of serverNames) {
    if (pattern === name) return Number.MAX_SAFE_INTEGER;
    if (pattern.startsWith('*.')) {
      const suffix = pattern.slice(1);
      if (name.length > suffix.length && name.endsWith(suffix) && suffix.length > best) best = suffix.length;
    }
  }
  return best;
}

/** The longest subnet that holds `address`; 0 for no subnets (any address); -1 for no match. */
function subnetScore(subnets: CompiledTlsMatch['subnets'], addresses: readonly string[]): number {
  if (subnets.length === 0) return 0;
  for (const s of subnets) if (addresses.some((a) => s.has(a))) return s.bits + 1;
  return -1;
}

/**
 * The route a connection takes, chosen as Envoy chooses a filter chain: the most specific
 * destination subnet holding the address first (without falling back to a less specific one),
 * then within it the most specific server name (exact, then the longest wildcard); among
 * equals, the first written. `addresses`: where the caller connects (the URL's IP, else the
 * service's `addresses`).
 */
export function selectTlsRoute(routes: readonly CompiledTlsRoute[], sni: string | undefined, addresses: readonly string[]): CompiledTlsRoute | undefined {
  return selectTlsMatch(routes, sni, addresses)?.route;
}

/** As {@link selectTlsRoute}, with the match that selected the route. */
export function selectTlsMatch(
  routes: readonly CompiledTlsRoute[],
  sni: string | undefined,
  addresses: readonly string[],
): { readonly route: CompiledTlsRoute; readonly match: CompiledTlsMatch } | undefined {
  let bestIp = -1;
  for (const route of routes) for (const match of route.matches) bestIp = Math.max(bestIp, subnetScore(match.subnets, addresses));
  if (bestIp < 0) return undefined;
  let best: { route: CompiledTlsRoute; match: CompiledTlsMatch } | undefined;
  let bestSni = -1;
  for (const route of routes) {
    for (const match of route.matches) {
      if (subnetScore(match.subnets, addresses) !== bestIp) continue;
      const name = sniScore(match.sniHosts, sni);
      if (name > bestSni) {
        best = { route, match };
        bestSni = name;
      }
    }
  }
  return best;
}

/**
 * What a connection to `hostname` (the URL's) is matched on: its SNI, the host name (none for an
 * IP address, which clients never send as SNI), and the address it connects to, the IP itself or
 * else the service's `addresses`.
 */
export function connectionOf(hostname: string, routes: TlsPortRoutes): { readonly sni: string | undefined; readonly addresses: readonly string[] } {
  const bare = hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare) !== 0) return { sni: undefined, addresses: [bare] };
  return { sni: bare.toLowerCase().replace(/\.$/, ''), addresses: routes.addresses };
}

/** A match's conditions in words, for `explain` and inspection. */
export function describeTlsMatch(match: TlsMatchSpec): string {
  const parts: string[] = [];
  if (match.sniHosts?.length) parts.push(`sni ${match.sniHosts.join(', ')}`);
  if (match.destinationSubnets?.length) parts.push(`destination ${match.destinationSubnets.join(', ')}`);
  if (match.port) parts.push(`port ${match.port}`);
  if (match.sourceLabels && Object.keys(match.sourceLabels).length > 0)
    parts.push(
      `source labels ${Object.entries(match.sourceLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',')}`,
    );
  if (match.sourceNamespace) parts.push(`source namespace ${match.sourceNamespace}`);
  if (match.gateways?.length) parts.push(`gateways ${match.gateways.join(', ')}`);
  return parts.length > 0 ? parts.join(' AND ') : 'any';
}

/** Picks a weighted destination with a uniform random number in [0, 1). */
export function pickTlsDestination(route: CompiledTlsRoute, random: number): CompiledDestination | undefined {
  const cumulative = route.cumulative;
  const n = cumulative.length;
  if (n <= 1) return route.destinations[0];
  const target = random * cumulative[n - 1]!;
  for (let i = 0; i < n; i++) if (target < cumulative[i]!) return route.destinations[i];
  return route.destinations[n - 1];
}
