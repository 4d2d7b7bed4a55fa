import { isIP } from 'node:net';
import type { Endpoint, Locality } from '../endpoint.js';
import { UNKNOWN_LOCALITY } from '../endpoint.js';
import type { DnsAddress, DnsQuerier, DnsSrvRecord } from './dns-resolver.js';
import { searchNames } from './search-names.js';

/** Which address records to ask for. */
export type DnsFamily = 'ipv4' | 'ipv6' | 'both';

/** What a resolved endpoint inherits from the entry it came from (a ServiceEntry endpoint, say). */
export interface EndpointTemplate {
  /**
   * Default 1. Every endpoint of the answer gets it, as Envoy gives a STRICT_DNS endpoint's weight
   * to each address; an SRV answer's relative weights multiply it.
   */
  readonly weight?: number;
  /** Default `{}`. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Default unknown. */
  readonly locality?: Locality;
  readonly network?: string;
  /** Istio's `tlsMode` of the entry's endpoint (mesh mTLS), when not from its labels. */
  readonly tlsMode?: string;
}

/**
 * A name to resolve into endpoints. With `portName`, the SRV record
 * `_<portName>._<protocol>.<name>` gives the ports (and, for headless services, one target per
 * pod); when no such record exists and `port` is set, the A/AAAA answer for `name` is used with
 * `port`. Without `portName`, `port` is required.
 */
export interface DnsTarget {
  /** As written by the caller: a short name, a partly or fully qualified name, or an IP literal. */
  readonly name: string;
  readonly port?: number;
  readonly portName?: string;
  /** SRV protocol label. Default `tcp`. */
  readonly protocol?: 'tcp' | 'udp';
  readonly template?: EndpointTemplate;
}

/** What the resolver configuration contributes to one lookup. */
export interface DnsLookupContext {
  readonly querier: DnsQuerier;
  readonly search: readonly string[];
  readonly ndots: number;
  readonly family: DnsFamily;
}

/**
 * The outcome of one lookup. `found` may hold no endpoints (an SRV record whose targets are all
 * gone); `absent` means every candidate name answered NXDOMAIN or NODATA.
 */
export type DnsLookupResult =
  | {
      readonly status: 'found';
      /** The name that answered (the SRV name for SRV lookups). */
      readonly fqdn: string;
      /** In answer order (A before AAAA), duplicates removed. */
      readonly endpoints: readonly Endpoint[];
      /** Smallest TTL among the records used, seconds; 0 when the server sent 0. */
      readonly ttl: number;
      /** TTL of the record behind the first endpoint, seconds (Envoy's logical DNS refreshes on it). */
      readonly firstTtl: number;
      /** The name was an IP literal: nothing to refresh. */
      readonly literal: boolean;
      /**
       * The endpoints came from SRV records. Node does not report an SRV record's TTL, so `ttl`
       * covers the targets' address records only; the caller caps the refresh at its default rate.
       */
      readonly srv: boolean;
    }
  | { readonly status: 'absent' };

/**
 * Resolves `target` once: walks the search candidates in resolver order and takes the first name
 * that has records. A failed query (DnsLookupError) ends the walk and is thrown: skipping a name
 * whose server failed could settle on a later candidate that belongs to a different service, and
 * flip back on the next refresh.
 */
export async function lookupEndpoints(ctx: DnsLookupContext, target: DnsTarget): Promise<DnsLookupResult> {
  const template = target.template ?? {};
  const literal = target.name.replace(/^\[|\]$/g, '');
  if (isIP(literal) !== 0) {
    const port = target.port;
    if (port === undefined) return { status: 'absent' };
    return { status: 'found', fqdn: literal, endpoints: [makeEndpoint(literal, port, template)], ttl: 0, firstTtl: 0, literal: true, srv: false };
  }
  if (target.portName !== undefined) {
    const srvName = `_${target.portName}._${target.protocol ?? 'tcp'}.${target.name}`;
    for (const fqdn of searchNames(srvName, ctx.search, ctx.ndots)) {
      const answer = await ctx.querier.querySrv(fqdn);
      if (answer.status === 'found') return resolveSrvTargets(ctx, fqdn, answer.records, template);
    }
    if (target.port === undefined) return { status: 'absent' };
  }
  const port = target.port;
  if (port === undefined) throw new TypeError(`DNS target ${target.name} needs a port or a port name`);
  for (const fqdn of searchNames(target.name, ctx.search, ctx.ndots)) {
    const addresses = await queryFamilies(ctx, fqdn);
    if (addresses !== undefined)
      return found(
        fqdn,
        addresses.map((a) => ({ address: a, port, weight: undefined })),
        template,
        false,
      );
  }
  return { status: 'absent' };
}

interface Resolved {
  readonly address: DnsAddress;
  readonly port: number;
  /** From SRV; undefined for plain address answers. */
  readonly weight: number | undefined;
}

/** The addresses of `fqdn` in the configured families, or undefined when it has none. */
async function queryFamilies(ctx: DnsLookupContext, fqdn: string): Promise<DnsAddress[] | undefined> {
  const families: (4 | 6)[] = ctx.family === 'ipv4' ? [4] : ctx.family === 'ipv6' ? [6] : [4, 6];
  // Both queries go out together, as getaddrinfo does for AF_UNSPEC; either failing fails the lookup.
  const answers = await Promise.all(families.map((f) => ctx.querier.queryAddresses(fqdn, f)));
  const out: DnsAddress[] = [];
  for (const answer of answers) if (answer.status === 'found') out.push(...answer.records);
  return out.length > 0 ? out : undefined;
}

/**
 * RFC 2782 read for an endpoint list: the lowest priority value whose targets have addresses is
 * in use, and higher values are backups, used only while every target of the lower ones has no
 * address (an endpoint list cannot hold standby hosts; a target that has addresses but does not
 * answer is for outlier detection). Within the group, weights are relative: they are divided by
 * their greatest common divisor, so the equal weights Kubernetes DNS publishes (`100/n` each)
 * become 1, as an address answer's endpoints are, and `10`/`90` become 1 and 9. Weight 0
 * ("rarely" in RFC 2782) counts as 1: balancers need a positive weight.
 */
async function resolveSrvTargets(ctx: DnsLookupContext, fqdn: string, records: readonly DnsSrvRecord[], template: EndpointTemplate): Promise<DnsLookupResult> {
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  const byName = new Map<string, readonly DnsAddress[]>();
  for (const priority of priorities) {
    const group = records.filter((r) => r.priority === priority);
    const names = [...new Set(group.map((r) => r.name.toLowerCase()))].filter((n) => !byName.has(n));
    // Targets are absolute names: no search list.
    const resolved = await Promise.all(names.map((n) => queryFamilies(ctx, n)));
    names.forEach((n, i) => byName.set(n, resolved[i] ?? []));
    const used = group.filter((r) => (byName.get(r.name.toLowerCase()) ?? []).length > 0);
    if (used.length === 0) continue;
    const divisor = used.map(srvWeight).reduce(gcd);
    const out: Resolved[] = [];
    for (const record of used) {
      for (const address of byName.get(record.name.toLowerCase()) ?? []) {
        out.push({ address, port: record.port, weight: srvWeight(record) / divisor });
      }
    }
    return found(fqdn, out, template, true);
  }
  // The records exist but no target has an address: an empty set, not an absent name.
  return found(fqdn, [], template, true);
}

function srvWeight(record: DnsSrvRecord): number {
  return Math.max(1, record.weight);
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function found(fqdn: string, resolved: readonly Resolved[], template: EndpointTemplate, srv: boolean): DnsLookupResult {
  const seen = new Set<string>();
  const endpoints: Endpoint[] = [];
  let ttl = Number.POSITIVE_INFINITY;
  for (const r of resolved) {
    ttl = Math.min(ttl, r.address.ttl);
    const endpoint = makeEndpoint(r.address.address, r.port, template, r.weight);
    if (seen.has(endpoint.key)) continue;
    seen.add(endpoint.key);
    endpoints.push(endpoint);
  }
  const first = resolved[0];
  return {
    status: 'found',
    fqdn,
    endpoints,
    ttl: Number.isFinite(ttl) ? ttl : 0,
    firstTtl: first ? first.address.ttl : 0,
    literal: false,
    srv,
  };
}

/**
 * An endpoint for one resolved address, with what the template says about it; `weight` is the
 * SRV record's relative weight, if any.
 */
export function makeEndpoint(address: string, port: number, template: EndpointTemplate, weight?: number): Endpoint {
  return {
    key: `${address}:${port}`,
    address,
    port,
    weight: positive(template.weight) * positive(weight),
    labels: template.labels ?? {},
    locality: template.locality ?? UNKNOWN_LOCALITY,
    ...(template.network !== undefined ? { network: template.network } : {}),
    ready: true,
    ...(template.tlsMode !== undefined ? { tlsMode: template.tlsMode } : {}),
  };
}

function positive(weight: number | undefined): number {
  return weight !== undefined && weight > 0 ? weight : 1;
}
