import type { FieldPath } from '../../document.js';
import type { HTTPMatchRequest, HTTPRoute, L4MatchAttributes, TLSMatchAttributes, VirtualServiceSpec } from '../../schema/index.js';
import { checkExportTo, checkGatewayNames, checkPort } from './common-rules.js';
import { isJwtClaimHeader } from './header-rules.js';
import { checkHttpRoute, checkRouteDestinations } from './http-route-rules.js';
import { hostSubsetOf, hostsOverlap, isIpAddress, validateIpSubnet, validateLabels, validateWildcardDomain } from './names.js';
import type { RuleReport, RuleSubject } from './rule-report.js';
import { q } from './rule-report.js';

/** istiod's ValidateVirtualService. */
export function checkVirtualService(spec: VirtualServiceSpec, subject: RuleSubject, report: RuleReport): void {
  const hosts = spec.hosts ?? [];
  const gateways = spec.gateways ?? [];
  const delegate = hosts.length === 0;
  if (delegate) {
    if (gateways.length > 0) report.error(['spec', 'gateways'], 'delegate virtual service must have no gateways specified');
    if ((spec.tls?.length ?? 0) > 0) report.error(['spec', 'tls'], 'delegate virtual service must have no tls route specified');
    if ((spec.tcp?.length ?? 0) > 0) report.error(['spec', 'tcp'], 'delegate virtual service must have no tcp route specified');
  }
  // Bound to gateways only when it names some and `mesh` is not one of them.
  const toGateway = gateways.length > 0 && !gateways.includes('mesh');
  checkGatewayNames(gateways, ['spec', 'gateways'], report);
  if (!toGateway) checkJwtClaimRouting(spec, gateways, report);
  checkHosts(spec, hosts, toGateway, report);
  if (!spec.http?.length && !spec.tcp?.length && !spec.tls?.length) report.error(['spec'], 'http, tcp or tls must be provided in virtual service');
  spec.http?.forEach((route, i) => checkHttpRoute(route, ['spec', 'http', i], { inDelegate: delegate }, report));
  spec.tls?.forEach((route, i) => {
    const path = ['spec', 'tls', i];
    if (route.match.length === 0) report.error([...path, 'match'], 'TLS route must have at least one match condition');
    route.match.forEach((match, m) => checkTlsMatch(match, spec, [...path, 'match', m], report));
    if (!route.route?.length) report.error([...path, 'route'], 'TLS route is required');
    checkRouteDestinations(route.route, [...path, 'route'], report);
  });
  spec.tcp?.forEach((route, i) => {
    const path = ['spec', 'tcp', i];
    route.match?.forEach((match, m) => checkL4Match(match, [...path, 'match', m], report));
    if (!route.route?.length) report.error([...path, 'route'], 'TCP route is required');
    checkRouteDestinations(route.route, [...path, 'route'], report);
  });
  checkExportTo(spec.exportTo, subject.namespace, ['spec', 'exportTo'], report);
  analyzeUnreachable(spec.http ?? [], 'http', (m) => withoutName(m), report);
  analyzeUnreachable(spec.tcp ?? [], 'tcp', (m) => m, report);
  analyzeUnreachable(spec.tls ?? [], 'tls', (m) => m, report);
  analyzeOverlappingPrefixes(spec.http ?? [], report);
}

function checkJwtClaimRouting(spec: VirtualServiceSpec, gateways: readonly string[], report: RuleReport): void {
  spec.http?.forEach((route, i) => {
    route.match?.forEach((match, m) => {
      for (const field of ['headers', 'withoutHeaders'] as const) {
        for (const key of Object.keys(match[field] ?? {})) {
          if (isJwtClaimHeader(key)) {
            report.error(
              ['spec', 'http', i, 'match', m, field, key],
              `JWT claim based routing (key: ${key}) is only supported for gateway, found no gateways: [${gateways.join(' ')}]`,
            );
          }
        }
      }
    });
  });
}

function checkHosts(spec: VirtualServiceSpec, hosts: readonly string[], toGateway: boolean, report: RuleReport): void {
  const sni = spec.tls?.some((t) => t.match.some((m) => m.sniHosts.length > 0)) ?? false;
  let allValid = true;
  hosts.forEach((host, i) => {
    const bad = toGateway ? validateGatewayBoundDomain(sni, host) : validateWildcardDomain(host);
    if (bad) {
      if (!isIpAddress(host)) {
        report.error(['spec', 'hosts', i], bad);
        allValid = false;
      }
    } else if (!toGateway && host === '*') {
      report.error(['spec', 'hosts', i], 'wildcard host * is not allowed for virtual services bound to the mesh gateway');
      allValid = false;
    }
  });
  if (!allValid) return;
  for (let i = 0; i < hosts.length; i++) {
    for (let j = i + 1; j < hosts.length; j++) {
      if (hostsOverlap(hosts[i]!, hosts[j]!)) report.error(['spec', 'hosts', j], `duplicate hosts in virtual service: ${hosts[i]} & ${hosts[j]}`);
    }
  }
}

/**
 * agent.ValidateWildcardDomainForVirtualServiceBoundToGateway: an SNI host may also be the name Envoy
 * generates for AUTO_PASSTHROUGH, `outbound_.<port>_._.<host>`.
 */
function validateGatewayBoundDomain(sni: boolean, domain: string): string | undefined {
  if (domain.length > 255) return `domain name ${q(domain)} too long (max 255)`;
  if (domain.length === 0) return 'empty domain name not allowed';
  if (sni && domain.startsWith('outbound_')) {
    const parts = domain.split('_');
    if (parts.length < 4) return `domain name ${domain} invalid, should follow 'outbound_.<PORT>_._.<HOSTNAME>' format`;
    const port = parts[1]!.replace(/^\.+|\.+$/g, '');
    const host = parts[3]!.replace(/^\.+|\.+$/g, '');
    if (parts[0] !== 'outbound') return `domain name ${q(domain)} invalid (label ${q(parts[0]!)} invalid)`;
    if (!/[0-9]/.test(port)) return `domain name ${q(domain)} invalid (label ${q(port)} invalid). should follow outbound_.<PORT>_._.<HOSTNAME> format`;
    if (!/[a-zA-Z]/.test(host)) return `domain name ${q(domain)} invalid (label ${q(host)} invalid). should follow outbound_.<PORT>_._.<HOSTNAME> format`;
    return undefined;
  }
  return validateWildcardDomain(domain);
}

function checkTlsMatch(match: TLSMatchAttributes, spec: VirtualServiceSpec, path: FieldPath, report: RuleReport): void {
  if (match.sniHosts.length === 0) report.error([...path, 'sniHosts'], 'TLS match must have at least one SNI host');
  match.sniHosts.forEach((sni, i) => checkSniHost(sni, spec, [...path, 'sniHosts', i], report));
  checkL4Match(match, path, report);
}

function checkSniHost(sni: string, spec: VirtualServiceSpec, path: FieldPath, report: RuleReport): void {
  // Here Istio counts a VirtualService without gateways as bound to one.
  const toGateway = !(spec.gateways ?? []).includes('mesh');
  const bad = toGateway ? validateGatewayBoundDomain(true, sni) : validateWildcardDomain(sni);
  if (bad) {
    if (isIpAddress(sni)) report.warn(path, `using an IP address (${q(sni)}) goes against SNI spec and most clients do not support this`);
    else report.error(path, bad);
    return;
  }
  const hosts = spec.hosts ?? [];
  if (!hosts.some((h) => hostSubsetOf(sni, h))) {
    report.error(path, `SNI host ${q(sni)} is not a compatible subset of any of the virtual service hosts: [${hosts.join(', ')}]`);
  }
}

function checkL4Match(match: L4MatchAttributes | TLSMatchAttributes, path: FieldPath, report: RuleReport): void {
  match.destinationSubnets?.forEach((subnet, i) => {
    const bad = validateIpSubnet(subnet);
    if (bad) report.error([...path, 'destinationSubnets', i], bad);
  });
  if (match.port) checkPort(match.port, [...path, 'port'], report);
  for (const bad of validateLabels(match.sourceLabels)) report.error([...path, 'sourceLabels'], bad);
  checkGatewayNames(match.gateways, [...path, 'gateways'], report);
}

function withoutName(match: HTTPMatchRequest): unknown {
  const { name: _name, ...rest } = match;
  return rest;
}

/** A match's identity for duplicate detection: keys sorted, empty values dropped (as Go's JSON omits them). */
function canonical(value: unknown): string {
  const normalize = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(normalize);
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(v).sort()) {
      const inner = (v as Record<string, unknown>)[key];
      if (inner === undefined || inner === null || inner === false || inner === 0 || inner === '') continue;
      if (typeof inner === 'object' && Object.keys(inner).length === 0) continue;
      out[key] = normalize(inner);
    }
    return out;
  };
  return JSON.stringify(normalize(value));
}

const routeName = (route: { name?: string }, index: number): string => (route.name ? q(route.name) : `#${index}`);
const matchName = (match: { name?: string }, index: number): string => (match.name ? q(match.name) : `#${index}`);

/**
 * Istio's analyzeUnreachable*Rules, warnings only: a rule after a catch-all, a second catch-all,
 * a match repeated from an earlier rule.
 */
function analyzeUnreachable<M extends object>(
  routes: readonly { readonly match?: readonly M[]; readonly name?: string }[],
  field: 'http' | 'tcp' | 'tls',
  identity: (match: M) => unknown,
  report: RuleReport,
): void {
  let total = 0;
  for (const route of routes) total += route.match?.length ?? (routes.length > 1 ? 1 : 0);
  if (total < 2) return;
  const seen = new Map<string, number>();
  let catchAll = -1;
  routes.forEach((route, i) => {
    const path = ['spec', field, i];
    const name = (): string => (field === 'http' ? routeName(route, i) : `#${i}`);
    const matches = route.match ?? [];
    if (matches.length === 0) {
      if (catchAll >= 0) report.warn(path, `virtualService rule ${name()} not used (only the last rule can have no matches) (IST0130)`, 'unreachable-rule');
      catchAll = i;
      return;
    }
    if (catchAll >= 0) {
      report.warn(path, `virtualService rule ${name()} not used (route without matches defined before) (IST0130)`, 'unreachable-rule');
      return;
    }
    let duplicates = 0;
    matches.forEach((match, m) => {
      const key = canonical(identity(match));
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        const other = field === 'http' ? routeName(routes[earlier]!, earlier) : `#${earlier}`;
        const label = field === 'http' ? matchName(match as { name?: string }, m) : `#${m}`;
        report.warn(
          [...path, 'match', m],
          `virtualService rule ${name()} match ${label} is not used (duplicate/overlapping match in rule ${other}) (IST0131)`,
          'ineffective-match',
        );
        duplicates++;
      } else seen.set(key, i);
    });
    if (duplicates === matches.length)
      report.warn(path, `virtualService rule ${name()} not used (all matches used by prior rules) (IST0130)`, 'unreachable-rule');
  });
}

interface PrefixMatch {
  readonly route: string;
  readonly match: string;
  readonly path: FieldPath;
  readonly prefix: string;
  readonly port: number;
  readonly method: string;
  readonly authority: string;
  readonly headers: ReadonlyMap<string, string>;
  readonly query: ReadonlyMap<string, string>;
  readonly without: ReadonlyMap<string, string>;
}

function exactOrPrefix(m: { exact?: string; prefix?: string } | undefined): string {
  if (m?.exact) return `exact:${m.exact}`;
  if (m?.prefix) return `prefix:${m.prefix}`;
  return '';
}

/** Istio's check that an earlier URI prefix match does not already take every request of a later one. */
function analyzeOverlappingPrefixes(routes: readonly HTTPRoute[], report: RuleReport): void {
  let candidates = 0;
  for (const route of routes) for (const match of route.match ?? []) if (match.uri?.prefix) candidates++;
  if (candidates < 2) return;
  const prefixes: PrefixMatch[] = [];
  const seen = new Set<string>();
  let catchAll = false;
  routes.forEach((route, i) => {
    if (catchAll) return;
    if (!route.match?.length) {
      catchAll = true;
      return;
    }
    route.match.forEach((match, m) => {
      const key = canonical(withoutName(match));
      if (seen.has(key)) return;
      seen.add(key);
      const prefix = match.uri?.prefix;
      if (!prefix) return;
      const map = (entries: Readonly<Record<string, { exact?: string; prefix?: string }>> | undefined) =>
        new Map(Object.entries(entries ?? {}).map(([k, v]) => [k, exactOrPrefix(v)]));
      prefixes.push({
        route: routeName(route, i),
        match: matchName(match, m),
        path: ['spec', 'http', i, 'match', m],
        prefix,
        port: match.port ?? 0,
        method: exactOrPrefix(match.method) || 'exact:GET',
        authority: exactOrPrefix(match.authority),
        headers: map(match.headers),
        query: map(match.queryParams),
        without: map(match.withoutHeaders),
      });
    });
  });
  for (let a = 0; a < prefixes.length; a++) {
    for (let b = a + 1; b < prefixes.length; b++) {
      const first = prefixes[a]!;
      const later = prefixes[b]!;
      if (later.prefix === first.prefix || !covers(first, later)) continue;
      report.warn(
        later.path,
        `virtualService rule ${later.route} match ${later.match} of prefix ${later.prefix} is not used (duplicate/overlapping match in rule ${first.match} of prefix ${first.prefix} on ${first.route}) (IST0131)`,
        'ineffective-match',
      );
    }
  }
}

function covers(a: PrefixMatch, b: PrefixMatch): boolean {
  const within = (x: string, y: string): boolean => x === y || x.startsWith(y);
  if (!b.prefix.startsWith(a.prefix) || a.port !== b.port) return false;
  if (!within(a.method, b.method) || !within(a.authority, b.authority)) return false;
  for (const [mine, theirs] of [
    [a.headers, b.headers],
    [a.query, b.query],
    [a.without, b.without],
  ] as const) {
    if (mine.size !== theirs.size) return false;
    for (const [key, value] of mine) {
      const other = theirs.get(key);
      if (other === undefined || !within(value, other)) return false;
    }
  }
  return true;
}
