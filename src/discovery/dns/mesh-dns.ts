import type { MeshClock } from '../../clock.js';
import type { DnsFamily } from './dns-lookup.js';
import { DnsEndpointSource } from './dns-endpoint-source.js';
import { compilePortNames } from './kubernetes-srv.js';
import { kubernetesSearchDomains, readResolvConf, RESOLV_CONF_PATH } from './resolv-conf.js';

/**
 * DNS discovery: how the mesh resolves ServiceEntries with `resolution: DNS` or
 * `DNS_ROUND_ROBIN` and Kubernetes service names no configuration declares. Unset fields keep what
 * resolv.conf says, as the system resolver of a pod would.
 */
export interface MeshDnsOptions {
  /**
   * Servers as `host` or `host:port` (IPv6 as `[addr]:port`), tried in order. Default: the
   * `nameserver` lines of resolv.conf (glibc's `127.0.0.1` when there are none).
   */
  readonly servers?: readonly string[];
  /**
   * Search domains tried for names with fewer than `ndots` dots. Default: resolv.conf's `search`
   * line; when it has none (outside a pod), the list kubelet writes for the mesh's namespace:
   * `<ns>.svc.<clusterDomain> svc.<clusterDomain> <clusterDomain>`.
   */
  readonly search?: readonly string[];
  /** A name with at least this many dots is tried as written first. Default: resolv.conf's (glibc: 1, pods: 5). */
  readonly ndots?: number;
  /**
   * Address records to use. Default `ipv4`, as Istio sets Envoy's `dns_lookup_family` to
   * V4_ONLY for an IPv4 pod; `both` uses A and AAAA answers, IPv4 first.
   */
  readonly family?: DnsFamily;
  /** Time to wait for one server's answer, ms. Default: resolv.conf's `timeout` (5000). */
  readonly timeoutMs?: number;
  /** Rounds over the servers before a lookup fails. Default: resolv.conf's `attempts` (2). */
  readonly attempts?: number;
  /** Where to read the resolver configuration. Default `/etc/resolv.conf`. */
  readonly resolvConfPath?: string;
  /** Floor on the TTL-driven refresh, ms. Default 1000. */
  readonly minRefreshMs?: number;
  /** Cap on the TTL-driven refresh, ms. Default 300000 (5 minutes). */
  readonly maxRefreshMs?: number;
  /** Refresh when the answer had TTL 0 or no records, ms. Default 30000, Istio's DNS refresh rate. */
  readonly defaultRefreshMs?: number;
  /** First retry after a failed lookup, ms; doubles with each failure in a row. Default 1000. */
  readonly failureRefreshMs?: number;
  /** Cap on the retry interval after failures, ms. Default 30000. */
  readonly maxFailureRefreshMs?: number;
  /**
   * Port names of Kubernetes services that no configuration declares, so their endpoints are
   * found by SRV (`_<name>._tcp.<service>`: each pod's address and target port) rather than by
   * A/AAAA with the port the caller used. Keys are `<service>.<namespace>:<port>` (also
   * `<service>.<namespace>.svc[.<clusterDomain>]:<port>`), the port being the one the caller
   * uses; values are the Service's port names, e.g. `{ 'reviews.shop:9080': 'http-web' }`. A
   * name without such SRV records falls back to A/AAAA. Default none: a ServiceEntry's port
   * names are used for the Kubernetes names it resolves without this.
   */
  readonly portNames?: Readonly<Record<string, string>>;
}

/**
 * The mesh's DNS source: resolv.conf with the options applied and, outside a pod (no search list
 * in resolv.conf), the search list a pod of `namespace` would have. Throws a `DnsOptionError` for
 * a malformed `portNames`.
 */
export function createMeshDnsSource(options: MeshDnsOptions, namespace: string, clusterDomain: string, clock: MeshClock): DnsEndpointSource {
  // First: a malformed option must fail before anything starts.
  const portNames = compilePortNames(options.portNames, clusterDomain);
  const path = options.resolvConfPath ?? RESOLV_CONF_PATH;
  // Outside a pod resolv.conf has no search list: use the one a pod of this namespace would have.
  const search = options.search ?? (readResolvConf(path).search.length > 0 ? undefined : kubernetesSearchDomains(namespace, clusterDomain));
  return new DnsEndpointSource({
    resolvConfPath: path,
    clock,
    portNames,
    ...(options.servers !== undefined ? { nameservers: options.servers } : {}),
    ...(search !== undefined ? { search } : {}),
    ...(options.ndots !== undefined ? { ndots: options.ndots } : {}),
    ...(options.family !== undefined ? { family: options.family } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.attempts !== undefined ? { attempts: options.attempts } : {}),
    ...(options.minRefreshMs !== undefined ? { minRefreshMs: options.minRefreshMs } : {}),
    ...(options.maxRefreshMs !== undefined ? { maxRefreshMs: options.maxRefreshMs } : {}),
    ...(options.defaultRefreshMs !== undefined ? { defaultRefreshMs: options.defaultRefreshMs } : {}),
    ...(options.failureRefreshMs !== undefined ? { failureRefreshMs: options.failureRefreshMs } : {}),
    ...(options.maxFailureRefreshMs !== undefined ? { maxFailureRefreshMs: options.maxFailureRefreshMs } : {}),
  });
}
