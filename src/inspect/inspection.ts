/**
 * The shape of `mesh.inspect()`: plain JSON (no Maps, no class instances), so it can be served by
 * the admin handler, diffed, and stored as is. Times are wall-clock ISO 8601 strings.
 */

/** A resource named by kind, namespace and name. */
export interface InspectedResource {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/** A configuration finding, as `sidecarless validate` reports it. */
export interface InspectedIssue {
  readonly severity: 'error' | 'warning';
  readonly code: string;
  readonly message: string;
  readonly resource?: InspectedResource;
  /** Field path in the resource, e.g. `spec.http[0].match[1].uri.regex`. */
  readonly path?: string;
  /** `file:line:column` when known. */
  readonly location?: string;
}

export interface InspectedDestination {
  readonly host: string;
  readonly subset?: string;
  readonly port?: number;
  /** Weight as configured. */
  readonly weight: number;
  /** Share of the route's traffic, in percent. */
  readonly percent: number;
}

/** One `http[]` entry of a VirtualService, in evaluation order. */
export interface InspectedRoute {
  readonly name?: string;
  /** Where it was written: the VirtualService (a delegate's own for delegated routes) and field path. */
  readonly resource: InspectedResource;
  readonly path: string;
  /** One summary per `match[]` entry (conditions ANDed); empty: matches every request. */
  readonly matches: readonly string[];
  readonly destinations: readonly InspectedDestination[];
  /** What else the entry does: `redirect`, `directResponse`, `fault`, `retries`, `timeout`, `rewrite`, `mirror`, `headers`. */
  readonly actions: readonly string[];
}

/** One `tls[]` entry, as written: it applies to the host's TLS and HTTPS ports, chosen by SNI. */
export interface InspectedTlsRoute {
  readonly path: string;
  /** One summary per `match[]` entry, e.g. `sni login.example.com, *.example.com AND port 443`. */
  readonly matches: readonly string[];
  readonly destinations: readonly InspectedDestination[];
}

/** The routes for one host: the VirtualService that owns it and its entries in order. */
export interface InspectedRouteTable {
  readonly host: string;
  readonly virtualService: InspectedResource;
  readonly routes: readonly InspectedRoute[];
  /** Its `tls` routes (for TLS and HTTPS ports), when it has any. */
  readonly tlsRoutes?: readonly InspectedTlsRoute[];
}

/**
 * `healthy`: takes requests. `ejected`: outlier detection took it out until `ejectedUntil`.
 * `not-ready`: discovery says it is not ready. `terminating`: reserved for discovery that
 * reports termination apart from readiness (EndpointSlice conditions).
 */
export type EndpointHealth = 'healthy' | 'ejected' | 'not-ready' | 'terminating';

export interface InspectedEndpoint {
  /** `address:port`. */
  readonly address: string;
  readonly health: EndpointHealth;
  /** When ejected: the earliest time it returns (at the next interval check after it). */
  readonly ejectedUntil?: string;
  /** When ejected: how many times it has been. */
  readonly ejections?: number;
  readonly weight: number;
  /** `region/zone/subzone`; empty when unknown. */
  readonly locality: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Requests in flight to it now (Envoy's `rq_active`); 0 for a cluster no request used yet. */
  readonly inFlight: number;
}

/** Connection-pool limits (Envoy's circuit breakers) and the retry budget. */
export interface InspectedLimits {
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
  readonly retryBudget?: { readonly percent: number; readonly minRetryConcurrency: number };
}

export interface InspectedOutlierDetection {
  readonly consecutive5xxErrors: number;
  readonly consecutiveGatewayErrors: number;
  readonly consecutiveLocalOriginFailures: number;
  readonly splitExternalLocalOriginErrors: boolean;
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
  readonly httpErrorCodes?: readonly number[];
}

/** The policy a cluster runs with, after merging top level < subset < port level. */
export interface InspectedClusterPolicy {
  /** Balancer in force: Istio's `simple` name, `RING_HASH`, `MAGLEV`, or an added one (`PEAK_EWMA`). */
  readonly loadBalancer: string;
  /** What consistent hashing hashes on, when it does: `header:x-user`, `cookie:id`, `source-ip`, `query:u`. */
  readonly hashOn?: string;
  readonly http2: boolean;
  /** `trafficPolicy.tls.mode` as written; `DISABLE` when unset. */
  readonly tlsMode: string;
  /**
   * Mesh mTLS to the destination: `ISTIO_MUTUAL` from the rule, or `auto` (auto mTLS, to the
   * endpoints of the mesh only), with the SNI sent and the identities the server must prove
   * (empty: any SPIFFE ID of the mesh's trust domains).
   */
  readonly mtls?: { readonly mode: 'ISTIO_MUTUAL' | 'auto'; readonly sni: string; readonly expectedIdentities: readonly string[] };
  readonly connectTimeoutMs: number;
  readonly maxConnections?: number;
  readonly idleTimeoutMs?: number;
  readonly limits?: InspectedLimits;
  readonly outlierDetection?: InspectedOutlierDetection;
  /** Hedging delay (our addition, a DestinationRule annotation); absent when off. */
  readonly hedgeAfterMs?: number;
  /** The merged `trafficPolicy` as written, for anything the summary leaves out. */
  readonly trafficPolicy?: Readonly<Record<string, unknown>>;
}

export interface InspectedCluster {
  /** Envoy's name: `outbound|<port>|<subset>|<host>`. */
  readonly name: string;
  readonly host: string;
  readonly subset?: string;
  readonly port: number;
  /** Whether a request has used it yet (clusters are made on first use; live state only then). */
  readonly active: boolean;
  /** Where its endpoints come from: a ServiceEntry as written, DNS, the Kubernetes API (EndpointSlices), or none (passed through). */
  readonly discovery: 'static' | 'dns' | 'kubernetes' | 'none';
  readonly serviceEntry?: InspectedResource;
  readonly destinationRules: readonly InspectedResource[];
  readonly policy: InspectedClusterPolicy;
  readonly endpoints: readonly InspectedEndpoint[];
  /** Why it has no endpoints, when it has none for a known reason. */
  readonly unavailableReason?: string;
  /** Requests in flight over all its endpoints. */
  readonly inFlight: number;
  /** The service's breaker state, when the application configured one. */
  readonly breaker?: 'closed' | 'open' | 'half-open';
}

export interface InspectedConfigSource {
  readonly id: string;
  /** When it last delivered content; absent before its first delivery. */
  readonly lastDelivered?: string;
  readonly documents: number;
  /** Errors in its last delivery (what got it rejected, if it was). */
  readonly errors: readonly InspectedIssue[];
  readonly warnings: number;
}

export interface InspectedConfig {
  readonly snapshotVersion: number;
  /** When the snapshot in force was accepted. */
  readonly acceptedAt?: string;
  readonly namespace: string;
  readonly resources: Readonly<Record<string, number>>;
  readonly warnings: readonly InspectedIssue[];
  readonly sources: readonly InspectedConfigSource[];
  /** The last change rejected since the snapshot in force was accepted. */
  readonly lastRejection?: { readonly at: string; readonly message: string; readonly issues: readonly InspectedIssue[] };
}

/** `pending`: first lookup under way. `ok`. `failing`: the last lookup failed (last good endpoints kept). */
export type DnsWatchHealth = 'pending' | 'ok' | 'failing';

export interface InspectedDnsName {
  readonly name: string;
  readonly mode: string;
  readonly status: DnsWatchHealth;
  /** The name that answered (after search domains). */
  readonly fqdn?: string;
  readonly addresses: readonly string[];
  readonly lastError?: string;
  readonly consecutiveFailures: number;
  readonly answeredAt?: string;
  readonly nextLookupAt?: string;
}

export interface InspectedBreaker {
  readonly host: string;
  readonly state: 'closed' | 'open' | 'half-open';
}

export interface InspectedRateLimit {
  /** `namespace/resource/limit`. */
  readonly name: string;
  readonly source: InspectedResource;
  readonly path: string;
  readonly scope: 'LOCAL' | 'SHARED';
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
  /** What splits it into buckets: `none`, `header:x-user`, `query:k`, `port`, `vhost`, `route`. */
  readonly key: string;
  /** Where its buckets live now; `unused` before its first request. */
  readonly backend: 'local' | 'redis' | 'local-fallback' | 'unused';
}

/** Everything `mesh.inspect()` returns. */
export interface MeshInspection {
  /** When this view was taken. */
  readonly takenAt: string;
  readonly config: InspectedConfig;
  readonly routes: readonly InspectedRouteTable[];
  readonly clusters: readonly InspectedCluster[];
  readonly dns: readonly InspectedDnsName[];
  readonly breakers: readonly InspectedBreaker[];
  readonly rateLimits: readonly InspectedRateLimit[];
}
