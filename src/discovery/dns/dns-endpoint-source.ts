import { EventEmitter } from 'node:events';
import type { MeshClock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import { MeshClosedError } from '../../errors.js';
import type { Endpoint } from '../endpoint.js';
import type { DnsFamily, DnsLookupContext, DnsLookupResult, DnsTarget } from './dns-lookup.js';
import { lookupEndpoints } from './dns-lookup.js';
import type { DnsQuerier } from './dns-resolver.js';
import { DnsResolver } from './dns-resolver.js';
import { DnsLookupError } from './errors.js';
import type { ResolvConf, ResolvConfOverrides } from './resolv-conf.js';
import { applyResolvConfOverrides, readResolvConf, RESOLV_CONF_PATH } from './resolv-conf.js';

/**
 * How an answer becomes endpoints.
 *
 * - `strict` (ServiceEntry `resolution: DNS`, Envoy's STRICT_DNS, and Kubernetes services found
 *   by DNS): every address of the answer is an endpoint; an address that leaves the answer leaves
 *   the set, and an authoritative empty answer (NXDOMAIN, NODATA) empties it.
 * - `logical` (ServiceEntry `resolution: DNS_ROUND_ROBIN`, Envoy's LOGICAL_DNS): one endpoint per
 *   port whose `key` is `<name>:<port>` and stays the same while its `address` follows the first
 *   address of the latest answer, so new connections go to the first address and existing ones are
 *   not drained when round-robin DNS reorders its answers. An empty answer keeps the last address.
 */
export type DnsMode = 'strict' | 'logical';

/** A name to keep resolved. */
export interface DnsWatchSpec extends DnsTarget {
  /** Default `strict`. */
  readonly mode?: DnsMode;
  /** Identifies the watch. Default {@link dnsWatchKey} of the spec. */
  readonly key?: string;
}

/** The endpoint set of a watch changed (never emitted when only the answer order changed). */
export interface DnsEndpointChange {
  readonly key: string;
  readonly name: string;
  /** The name that answered; undefined when no candidate exists any more. */
  readonly fqdn: string | undefined;
  /** Sorted by key. */
  readonly endpoints: readonly Endpoint[];
  readonly previous: readonly Endpoint[];
}

/** A lookup failed; the watch keeps serving `kept`, its last good endpoints. */
export interface DnsLookupFailure {
  readonly key: string;
  readonly name: string;
  readonly error: DnsLookupError;
  /** Empty when the watch never had an answer. */
  readonly kept: readonly Endpoint[];
  readonly consecutiveFailures: number;
  /** When the next attempt is due, in ms from now. */
  readonly retryInMs: number;
}

export interface DnsEndpointSourceEvents {
  change: [change: DnsEndpointChange];
  /** Named so, not `error`, so that no listener is needed for the process to survive it. */
  lookupFailed: [failure: DnsLookupFailure];
}

/** What a watch knows now, for diagnostics (`sidecarless explain`). */
export interface DnsWatchStatus {
  readonly key: string;
  readonly name: string;
  readonly mode: DnsMode;
  readonly fqdn: string | undefined;
  /** Undefined until the first answer. */
  readonly endpoints: readonly Endpoint[] | undefined;
  readonly lastError: DnsLookupError | undefined;
  readonly consecutiveFailures: number;
  /** Clock time of the last answer (found or authoritatively absent). */
  readonly answeredAt: number | undefined;
  /** Clock time of the next scheduled lookup. */
  readonly nextLookupAt: number | undefined;
}

/** Options of {@link DnsEndpointSource}; the resolver fields override what resolv.conf says. */
export interface DnsEndpointSourceOptions extends ResolvConfOverrides {
  /** Where to read servers, search list, ndots, timeout and attempts. Default `/etc/resolv.conf`. */
  readonly resolvConfPath?: string;
  /**
   * Address records to use. Default `ipv4`: Istio sets Envoy's `dns_lookup_family` to V4_ONLY for
   * an IPv4 pod. `both` queries A and AAAA together and uses all addresses, IPv4 first.
   */
  readonly family?: DnsFamily;
  /** Floor on the TTL-driven refresh interval, ms. Default 1000. */
  readonly minRefreshMs?: number;
  /** Cap on the TTL-driven refresh interval, ms. Default 300000 (5 minutes). */
  readonly maxRefreshMs?: number;
  /**
   * Refresh interval when the TTL is 0 or unknown (NXDOMAIN, NODATA), ms, and the longest wait
   * after an SRV answer (whose own TTL Node does not report). Default 30000: Istio re-resolves
   * `resolution: DNS` entries every 30 seconds. Clamped to the floor and cap.
   */
  readonly defaultRefreshMs?: number;
  /** First retry after a failed lookup, ms; doubles with each consecutive failure. Default 1000. */
  readonly failureRefreshMs?: number;
  /** Cap on the retry interval after failures, ms. Default 30000. */
  readonly maxFailureRefreshMs?: number;
  /** Time for status timestamps, and the refresh timers (background: they never keep the process alive). Default the system clock. */
  readonly clock?: MeshClock;
  /** Sends the queries. Default a {@link DnsResolver} on the configured servers (owned and cancelled on close). */
  readonly querier?: DnsQuerier;
  /** See {@link DnsEndpointSource.portNames}. Default none. */
  readonly portNames?: ReadonlyMap<string, string>;
}

interface Watch {
  readonly key: string;
  readonly spec: DnsWatchSpec;
  readonly mode: DnsMode;
  readonly name: string;
  endpoints: readonly Endpoint[] | undefined;
  fqdn: string | undefined;
  lastError: DnsLookupError | undefined;
  failures: number;
  answeredAt: number | undefined;
  nextLookupAt: number | undefined;
  inflight: Promise<void> | undefined;
  cancelTimer: (() => void) | undefined;
}

/** The key a spec gets when it names none: `[logical|]` `[_port._proto.]` `name` `[:port]`. */
export function dnsWatchKey(spec: DnsWatchSpec): string {
  const name = normalizeName(spec.name);
  const srv = spec.portName !== undefined ? `_${spec.portName}._${spec.protocol ?? 'tcp'}.` : '';
  const port = spec.port !== undefined ? `:${spec.port}` : '';
  return `${spec.mode === 'logical' ? 'logical|' : ''}${srv}${name}${port}`;
}

/**
 * Keeps a set of DNS names resolved into endpoints: names are added on demand ({@link watch}),
 * each is re-resolved when its TTL runs out (clamped to a floor and a cap), a failed lookup keeps
 * the last good endpoints and is reported (`lookupFailed`) and retried with backoff, and a change
 * of the endpoint set is emitted (`change`). Search domains and `ndots` are applied here, as glibc
 * would. Every timer is a background one on the clock; {@link close} releases all of them and cancels queries in flight.
 */
export class DnsEndpointSource extends EventEmitter<DnsEndpointSourceEvents> {
  /** The resolver configuration in force (resolv.conf with the options applied). */
  readonly resolvConf: ResolvConf;
  /**
   * SRV port names of Kubernetes services no configuration declares, keyed
   * `<service>.<namespace>.svc.<clusterDomain>:<port>` (the mesh's `dns.portNames`). The source
   * does not read them; endpoint planning asks for them when it adds a watch.
   */
  readonly portNames: ReadonlyMap<string, string>;
  private readonly watches = new Map<string, Watch>();
  private readonly ctx: DnsLookupContext;
  private readonly ownsQuerier: boolean;
  private readonly clock: MeshClock;
  private readonly minRefreshMs: number;
  private readonly maxRefreshMs: number;
  private readonly defaultRefreshMs: number;
  private readonly failureRefreshMs: number;
  private readonly maxFailureRefreshMs: number;
  private closed = false;

  constructor(options: DnsEndpointSourceOptions = {}) {
    super();
    this.resolvConf = applyResolvConfOverrides(readResolvConf(options.resolvConfPath ?? RESOLV_CONF_PATH), options);
    this.portNames = options.portNames ?? new Map();
    this.ownsQuerier = options.querier === undefined;
    const querier = options.querier ?? createResolver(this.resolvConf, options.nameservers !== undefined);
    this.ctx = { querier, search: this.resolvConf.search, ndots: this.resolvConf.ndots, family: options.family ?? 'ipv4' };
    this.clock = options.clock ?? systemClock;
    this.minRefreshMs = options.minRefreshMs ?? 1000;
    this.maxRefreshMs = Math.max(this.minRefreshMs, options.maxRefreshMs ?? 300_000);
    this.defaultRefreshMs = options.defaultRefreshMs ?? 30_000;
    this.failureRefreshMs = options.failureRefreshMs ?? 1000;
    this.maxFailureRefreshMs = Math.max(this.failureRefreshMs, options.maxFailureRefreshMs ?? 30_000);
  }

  /**
   * Starts keeping `spec` resolved (the first lookup starts now) and returns its key. Watching a
   * key again is a no-op: the first spec for a key stays until {@link unwatch}.
   */
  watch(spec: DnsWatchSpec): string {
    if (this.closed) throw new MeshClosedError('DNS discovery is closed');
    if (spec.port === undefined && spec.portName === undefined) {
      throw new TypeError(`DNS watch for ${spec.name} needs a port or a port name`);
    }
    const key = spec.key ?? dnsWatchKey(spec);
    if (this.watches.has(key)) return key;
    const watch: Watch = {
      key,
      spec,
      mode: spec.mode ?? 'strict',
      name: normalizeName(spec.name),
      endpoints: undefined,
      fqdn: undefined,
      lastError: undefined,
      failures: 0,
      answeredAt: undefined,
      nextLookupAt: undefined,
      inflight: undefined,
      cancelTimer: undefined,
    };
    this.watches.set(key, watch);
    void this.lookup(watch);
    return key;
  }

  /** Stops keeping `key` resolved; a lookup in flight is ignored when it returns. */
  unwatch(key: string): void {
    const watch = this.watches.get(key);
    if (!watch) return;
    watch.cancelTimer?.();
    this.watches.delete(key);
  }

  /** Keys of every watch. */
  keys(): string[] {
    return [...this.watches.keys()];
  }

  /** The last known endpoints of `key` (sorted by key); undefined before its first answer or when not watched. */
  current(key: string): readonly Endpoint[] | undefined {
    return this.watches.get(key)?.endpoints;
  }

  /**
   * The endpoints of `key` once it has had an answer: at once when it has one, after the lookup in
   * flight otherwise. Rejects with the lookup's {@link DnsLookupError} when there has never been an
   * answer and the latest lookup failed (a retry is scheduled all the same).
   */
  async ready(key: string): Promise<readonly Endpoint[]> {
    const watch = this.watches.get(key);
    if (!watch) throw new Error(`DNS name ${key} is not watched`);
    if (watch.endpoints === undefined && watch.inflight) await watch.inflight;
    if (watch.endpoints !== undefined) return watch.endpoints;
    throw watch.lastError ?? new DnsLookupError(watch.name, 'A', 'ECANCELLED');
  }

  /** Looks `key` up now (joining a lookup in flight) and returns its endpoints afterwards. */
  async refresh(key: string): Promise<readonly Endpoint[] | undefined> {
    const watch = this.watches.get(key);
    if (!watch) throw new Error(`DNS name ${key} is not watched`);
    await this.lookup(watch);
    return watch.endpoints;
  }

  /** What `key` knows now; undefined when not watched. */
  status(key: string): DnsWatchStatus | undefined {
    const w = this.watches.get(key);
    if (!w) return undefined;
    return {
      key: w.key,
      name: w.name,
      mode: w.mode,
      fqdn: w.fqdn,
      endpoints: w.endpoints,
      lastError: w.lastError,
      consecutiveFailures: w.failures,
      answeredAt: w.answeredAt,
      nextLookupAt: w.nextLookupAt,
    };
  }

  /** Cancels every timer and query in flight and forgets every watch. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const watch of this.watches.values()) watch.cancelTimer?.();
    this.watches.clear();
    if (this.ownsQuerier) this.ctx.querier.cancel();
    this.removeAllListeners();
  }

  private lookup(watch: Watch): Promise<void> {
    if (watch.inflight) return watch.inflight;
    watch.cancelTimer?.();
    watch.cancelTimer = undefined;
    watch.nextLookupAt = undefined;
    const run = this.runLookup(watch)
      .catch((error: unknown) => {
        // Only a throwing listener gets here. The watch's state is already consistent; rethrow
        // outside the lookup, as a throwing listener of an I/O event would, so that `ready()` and
        // `refresh()` callers still get their endpoints.
        process.nextTick(() => {
          throw error;
        });
      })
      .finally(() => {
        watch.inflight = undefined;
      });
    watch.inflight = run;
    return run;
  }

  private async runLookup(watch: Watch): Promise<void> {
    let result: DnsLookupResult;
    try {
      result = await lookupEndpoints(this.ctx, watch.spec);
    } catch (error) {
      if (this.isLive(watch)) this.onFailure(watch, asLookupError(error, watch.name));
      return;
    }
    if (this.isLive(watch)) this.onAnswer(watch, result);
  }

  private isLive(watch: Watch): boolean {
    return !this.closed && this.watches.get(watch.key) === watch;
  }

  private onAnswer(watch: Watch, result: DnsLookupResult): void {
    const previous = watch.endpoints ?? [];
    let next: readonly Endpoint[];
    let fqdn: string | undefined;
    if (result.status === 'absent') {
      next = watch.mode === 'logical' ? previous : [];
      fqdn = watch.mode === 'logical' ? watch.fqdn : undefined;
    } else {
      fqdn = result.fqdn;
      next = watch.mode === 'logical' ? logicalEndpoints(watch.name, result.endpoints, previous) : sortByKey(result.endpoints);
    }
    watch.endpoints = next;
    watch.fqdn = fqdn;
    watch.failures = 0;
    watch.lastError = undefined;
    watch.answeredAt = this.clock.now();
    // An IP literal never changes: nothing to refresh.
    if (result.status === 'absent' || !result.literal) {
      const ttl = result.status === 'found' ? (watch.mode === 'logical' ? result.firstTtl : result.ttl) : 0;
      const delay = this.refreshDelay(ttl);
      // The SRV records' own TTL is unknown (Node does not report it): never wait past the default rate.
      this.schedule(watch, result.status === 'found' && result.srv ? Math.min(delay, this.refreshDelay(0)) : delay);
    }
    if (!sameEndpoints(previous, next)) {
      this.emit('change', { key: watch.key, name: watch.name, fqdn, endpoints: next, previous });
    }
  }

  private onFailure(watch: Watch, error: DnsLookupError): void {
    watch.failures++;
    watch.lastError = error;
    const delay = Math.min(this.failureRefreshMs * 2 ** Math.min(watch.failures - 1, 30), this.maxFailureRefreshMs);
    this.schedule(watch, delay);
    this.emit('lookupFailed', {
      key: watch.key,
      name: watch.name,
      error,
      kept: watch.endpoints ?? [],
      consecutiveFailures: watch.failures,
      retryInMs: delay,
    });
  }

  /** TTL seconds to the next refresh: 0 means "no TTL given", so the default rate applies. */
  private refreshDelay(ttlSeconds: number): number {
    const wanted = ttlSeconds > 0 ? ttlSeconds * 1000 : this.defaultRefreshMs;
    return Math.min(Math.max(wanted, this.minRefreshMs), this.maxRefreshMs);
  }

  private schedule(watch: Watch, delayMs: number): void {
    watch.cancelTimer?.();
    watch.nextLookupAt = this.clock.now() + delayMs;
    watch.cancelTimer = this.clock.schedule(
      delayMs,
      () => {
        watch.cancelTimer = undefined;
        if (this.isLive(watch)) void this.lookup(watch);
      },
      'background',
    );
  }
}

function createResolver(conf: ResolvConf, serversGiven: boolean): DnsResolver {
  const options = { timeoutMs: conf.timeoutMs, attempts: conf.attempts };
  if (serversGiven) return new DnsResolver({ ...options, servers: conf.nameservers });
  try {
    return new DnsResolver({ ...options, servers: conf.nameservers });
  } catch {
    // A resolv.conf server Node cannot parse (a scoped IPv6 address, say): c-ares reads the same
    // file itself and copes, so let it pick the servers.
    return new DnsResolver(options);
  }
}

/** One endpoint per port, keyed by name, at the first address of the answer. */
function logicalEndpoints(name: string, answer: readonly Endpoint[], previous: readonly Endpoint[]): readonly Endpoint[] {
  const firstByPort = new Map<number, Endpoint>();
  for (const e of answer) if (!firstByPort.has(e.port)) firstByPort.set(e.port, e);
  // Envoy's logical DNS never drains on an empty answer: keep the previous address.
  if (firstByPort.size === 0) return previous;
  return sortByKey([...firstByPort.values()].map((e) => ({ ...e, key: `${name}:${e.port}` })));
}

function sortByKey(endpoints: readonly Endpoint[]): readonly Endpoint[] {
  return [...endpoints].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Both sorted by key; labels, locality and network come from the watch's template and do not change. */
function sameEndpoints(a: readonly Endpoint[], b: readonly Endpoint[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y || x.key !== y.key || x.address !== y.address || x.port !== y.port || x.weight !== y.weight) return false;
  }
  return true;
}

function normalizeName(name: string): string {
  return name.replace(/\.+$/, '').toLowerCase();
}

function asLookupError(error: unknown, name: string): DnsLookupError {
  if (error instanceof DnsLookupError) return error;
  return new DnsLookupError(name, 'A', 'EUNKNOWN', { cause: error });
}
