import type { Endpoint } from '../discovery/endpoint.js';
import type { RateLimitTable } from '../resilience/rate-limit/rate-limit-spec.js';
import type { RouteTable } from '../routing/route-table.js';
import type { PortProtocolOf, PortRoute } from './compile/port-routing.js';
import type { UpstreamTls } from '../security/tls-settings.js';
import type { PeerAuthenticationPolicy } from '../security/peer-authentication-policy.js';
import type { CompiledAuthorization } from '../security/authz/compiled-authorization.js';
import type { CompiledRequestAuthentication } from '../security/jwt/compiled-jwt-rules.js';
import type { ConfigIssue, ResourceRef } from '../issue.js';
import type { MeshResource } from './resource.js';

export type Resolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

/** A service port with the endpoints that serve it (target ports already applied). */
export interface ServicePort {
  readonly number: number;
  readonly name: string;
  readonly protocol: string;
  readonly endpoints: readonly Endpoint[];
}

/** A service in the registry: today from ServiceEntry (+ WorkloadEntry), later Kubernetes too. */
export interface ServiceDef {
  /** FQDN, or a wildcard pattern such as `*.example.com`. */
  readonly host: string;
  readonly namespace: string;
  readonly ports: readonly ServicePort[];
  readonly resolution: Resolution;
  readonly location: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  readonly addresses: readonly string[];
  readonly source: ResourceRef;
  /** ServiceEntry `subjectAltNames`: identities the service's workloads may present. */
  readonly subjectAltNames?: readonly string[];
  /** `namespace/name` of the service accounts its WorkloadEntries (or inline endpoints) name. */
  readonly serviceAccounts?: readonly string[];
}

/** Istio's TrafficPolicy, as written (the data path compiles its parts). */
export type TrafficPolicySpec = Readonly<Record<string, unknown>>;

export interface SubsetDef {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly trafficPolicy: TrafficPolicySpec | undefined;
  readonly source: ResourceRef;
}

/** The DestinationRule in force for a host, after Istio's lookup order and merging. */
export interface EffectiveDestinationRule {
  readonly host: string;
  /** Contributing resources, the one whose top-level policy won first. */
  readonly sources: readonly ResourceRef[];
  /** Annotations of the rule whose top-level policy won (our extensions are read from here). */
  readonly annotations: Readonly<Record<string, string>>;
  readonly trafficPolicy: TrafficPolicySpec | undefined;
  readonly subsets: ReadonlyMap<string, SubsetDef>;
}

/**
 * Everything the data path reads, for one caller (namespace + workload labels): immutable, built
 * whole on every accepted change and swapped in at once.
 */
export interface Snapshot {
  /** Increases by one with every accepted change. */
  readonly version: number;
  /** The caller's namespace that visibility and short names were resolved for. */
  readonly namespace: string;
  readonly rootNamespace: string;
  readonly clusterDomain: string;
  /** Accepted resources (visible or not). */
  readonly resources: readonly MeshResource[];
  /** Namespaces the configuration mentions (resources' own), plus the caller's and the root. */
  readonly namespaces: ReadonlySet<string>;
  /** Warnings that came with this snapshot (errors never make a snapshot). */
  readonly warnings: readonly ConfigIssue[];
  /** Route table for a concrete FQDN (exact beats wildcard, longest wildcard wins). */
  routeTable(host: string): RouteTable | undefined;
  /**
   * How a call to `host:port` is routed: a TLS or HTTPS port (its ServiceEntry's protocol, else
   * what `protocolOf` says, a Kubernetes Service port's from discovery) by its VirtualService's
   * `tls` routes, any other by the `http` route table for that port (undefined: the default route).
   */
  routeFor(host: string, port: number, protocolOf?: PortProtocolOf): PortRoute;
  /** Every host (or wildcard pattern) with a route table, for inspection. */
  routeTables(): Iterable<readonly [host: string, table: RouteTable]>;
  /** Registry entry for a concrete FQDN. */
  service(host: string): ServiceDef | undefined;
  /** All services visible to the caller. */
  services(): Iterable<ServiceDef>;
  /** The DestinationRule in force for calls from this caller to `host`. */
  destinationRule(host: string): EffectiveDestinationRule | undefined;
  /**
   * The compiled settings of a DestinationRule `tls` block (as found in a merged traffic policy):
   * files read and checked when the snapshot was built. Undefined for no block.
   */
  upstreamTls(block: unknown): UpstreamTls | undefined;
  /** The Sidecar resource that applies to the caller, if any. */
  readonly sidecar: ResourceRef | undefined;
  /** The applicable Sidecar's `outboundTrafficPolicy.mode`, if it sets one. */
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY' | undefined;
  /** Whether a Sidecar resource lets this caller see `host` (no Sidecar: everything). */
  isEgressAllowed(host: string, serviceNamespace: string): boolean;
  /** Client-side rate limits (RateLimitPolicy, EnvoyFilter local rate limits) for this caller. */
  readonly rateLimits: RateLimitTable;
  /** The PeerAuthentication (inbound mTLS mode per port) in force for this workload. */
  readonly peerAuthentication: PeerAuthenticationPolicy;
  /** The AuthorizationPolicies in force for this workload (inbound requests). */
  readonly authorization: CompiledAuthorization;
  /** The RequestAuthentication JWT rules in force for this workload (inbound requests). */
  readonly requestAuthentication: CompiledRequestAuthentication;
}

/** The service port a call to `port` uses: that number, or the only port a service has. */
export function servicePortFor(service: ServiceDef | undefined, port: number): ServicePort | undefined {
  if (!service) return undefined;
  return service.ports.find((p) => p.number === port) ?? (service.ports.length === 1 ? service.ports[0] : undefined);
}
