import { Resolver } from 'node:dns/promises';
import { DnsLookupError, DnsOptionError } from './errors.js';

/** One address of an A or AAAA answer. */
export interface DnsAddress {
  readonly address: string;
  readonly family: 4 | 6;
  /** Seconds, as the server sent it. */
  readonly ttl: number;
}

/** One SRV record. Node does not report SRV TTLs, so there is none here. */
export interface DnsSrvRecord {
  /** Target host name (absolute, without the trailing dot). */
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/**
 * The answer to one query. `nxdomain` (the name does not exist) and `nodata` (it exists, with no
 * record of this type) are authoritative answers, not failures: the name has no such records.
 * Failures (server failure, timeout, refused, unreachable server) are thrown as
 * {@link DnsLookupError}.
 */
export type DnsAnswer<T> = { readonly status: 'found'; readonly records: readonly T[] } | { readonly status: 'nxdomain' } | { readonly status: 'nodata' };

/** The queries DNS discovery needs; {@link DnsResolver} sends them, tests may fake them. */
export interface DnsQuerier {
  queryAddresses(name: string, family: 4 | 6): Promise<DnsAnswer<DnsAddress>>;
  querySrv(name: string): Promise<DnsAnswer<DnsSrvRecord>>;
  /** Aborts every query in flight (they reject with `ECANCELLED`). */
  cancel(): void;
}

/** Options of {@link DnsResolver}. */
export interface DnsResolverOptions {
  /**
   * Servers as `host` or `host:port` (IPv6 as `[addr]:port`), tried in order. Default: the ones
   * c-ares reads from /etc/resolv.conf.
   */
  readonly servers?: readonly string[];
  /** Time to wait for one answer before retrying, in ms. Default 5000 (resolv.conf `timeout:5`). */
  readonly timeoutMs?: number;
  /** Tries per server. Default 2 (resolv.conf `attempts:2`). */
  readonly attempts?: number;
}

/** Answers that mean "no such records" rather than "no answer". */
const NXDOMAIN_CODES = new Set(['ENOTFOUND']);
const NODATA_CODES = new Set(['ENODATA']);

/**
 * Queries DNS servers directly (c-ares through `node:dns/promises`, never `getaddrinfo`, so no
 * search list, hosts file or thread pool is involved) and sorts every outcome into an answer,
 * an authoritative absence, or a failure.
 */
export class DnsResolver implements DnsQuerier {
  private readonly resolver: Resolver;

  constructor(options: DnsResolverOptions = {}) {
    try {
      this.resolver = new Resolver({ timeout: options.timeoutMs ?? 5000, tries: options.attempts ?? 2 });
      if (options.servers && options.servers.length > 0) this.resolver.setServers([...options.servers]);
    } catch (cause) {
      // Node's own TypeError/RangeError for an address or number c-ares cannot take.
      const servers = options.servers ? ` (servers ${options.servers.join(', ')})` : '';
      throw new DnsOptionError(`dns: ${cause instanceof Error ? cause.message : String(cause)}${servers}`, { cause });
    }
  }

  /** The servers in use, as c-ares reports them. */
  servers(): string[] {
    return this.resolver.getServers();
  }

  async queryAddresses(name: string, family: 4 | 6): Promise<DnsAnswer<DnsAddress>> {
    const rrtype = family === 4 ? 'A' : 'AAAA';
    try {
      const records = family === 4 ? await this.resolver.resolve4(name, { ttl: true }) : await this.resolver.resolve6(name, { ttl: true });
      if (records.length === 0) return { status: 'nodata' };
      return { status: 'found', records: records.map((r) => ({ address: r.address, family, ttl: r.ttl })) };
    } catch (error) {
      return absence(error, name, rrtype);
    }
  }

  async querySrv(name: string): Promise<DnsAnswer<DnsSrvRecord>> {
    try {
      const records = await this.resolver.resolveSrv(name);
      if (records.length === 0) return { status: 'nodata' };
      return {
        status: 'found',
        records: records.map((r) => ({ name: r.name.replace(/\.$/, ''), port: r.port, priority: r.priority, weight: r.weight })),
      };
    } catch (error) {
      return absence(error, name, 'SRV');
    }
  }

  cancel(): void {
    this.resolver.cancel();
  }
}

function absence(error: unknown, name: string, rrtype: 'A' | 'AAAA' | 'SRV'): { readonly status: 'nxdomain' | 'nodata' } {
  const code = errorCode(error);
  if (NXDOMAIN_CODES.has(code)) return { status: 'nxdomain' };
  if (NODATA_CODES.has(code)) return { status: 'nodata' };
  throw new DnsLookupError(name, rrtype, code, { cause: error });
}

function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return 'EUNKNOWN';
}
