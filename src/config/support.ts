import type { SchemaKind } from './resource.js';

/**
 * What sidecarless does with a field: `supported` (it has its Istio meaning), `not-yet` (planned;
 * validated but without effect for now) or `not-applicable` (meaningful only to an Envoy proxy,
 * a gateway or the cluster's network, so never implemented in-process).
 */
export type SupportStatus = 'supported' | 'not-yet' | 'not-applicable';

export interface FieldSupport {
  readonly status: SupportStatus;
  /** Why a field is not supported (yet), or a note on how a supported field is read. */
  readonly reason?: string;
  /**
   * For a string field (or a list of strings): only these values are supported; any other value
   * is reported with `otherwise` and `reason`.
   */
  readonly values?: {
    readonly supported: readonly string[];
    readonly otherwise: Exclude<SupportStatus, 'supported'>;
    readonly reason: string;
  };
}

/** How a kind sidecarless does not read is reported. */
export interface KindSupport {
  readonly group: string;
  readonly status: Exclude<SupportStatus, 'supported'>;
  readonly reason: string;
}

const DATA_PATH = 'an egress entry applies to every port of its hosts for now';
const BALANCER = 'not implemented yet by the balancers';
const TELEMETRY = 'metrics carry no per-route stat prefix yet';
const NO_LISTENER =
  'configures the inbound listeners of the Envoy sidecar; calls reach an application served by sidecarless directly, with no proxy listener in front';
const NO_LISTENER_MATCH = 'ignored: the local rate-limit patch applies as though it matched (only listener.portNumber and the network filter name are read)';
const TARGET_REFS =
  'attaches the policy to a gateway or a waypoint; as in Istio, a policy with targetRefs never applies to a sidecar workload, so it is ignored here';
const NO_CAPTURE =
  'sidecarless sees only the calls made through its own API (mesh.fetch, mesh.request, mesh.dispatcher); it captures no traffic and binds no listener';

const supported: FieldSupport = { status: 'supported' };
const notYet = (reason: string): FieldSupport => ({ status: 'not-yet', reason });
const notApplicable = (reason: string): FieldSupport => ({ status: 'not-applicable', reason });

const MESH_ONLY = {
  supported: ['mesh'],
  otherwise: 'not-applicable',
  reason: "only the reserved gateway 'mesh' (every sidecar) applies in-process; routes bound to an Istio Gateway run on that gateway's proxy",
} as const;

/** A DestinationRule `tls` block (ClientTLSSettings) at `base`. */
function clientTls(base: string): Record<string, FieldSupport> {
  return {
    [base]: {
      status: 'supported',
      reason:
        'TLS is originated by the mesh on every connection to the endpoints (docs/security.md); the files are read and checked when the configuration is compiled (a missing, unreadable or non-PEM file rejects the change); a client certificate that is expired or not yet valid, or a key that does not match it, is refused at run time instead: requests fail with TlsCredentialUnavailableError (ERR_MESH_TLS_CREDENTIAL) naming the field until a good pair is written (watched, no restart)',
    },
    [`${base}.mode`]: {
      status: 'supported',
      reason:
        "DISABLE keeps plaintext (and turns auto mTLS off), but an https:// URL is still sent over TLS (with Node's trust store), never downgraded; ISTIO_MUTUAL uses the workload's certificates, Istio's SNI (outbound_.<port>_.<subset>_.<host>) and ALPN, and checks the server's identity against the destination's service accounts (docs/mtls.md); without workload certificates requests fail with WorkloadCertificateUnavailableError, never in plaintext",
    },
    [`${base}.caCertificates`]: {
      status: 'supported',
      reason: "replaces Node's trust store (the system's CAs and NODE_EXTRA_CA_CERTS) for the server certificate; unset, that trust store verifies it",
    },
    [`${base}.sni`]: {
      status: 'supported',
      reason:
        "unset, the SNI is the host name of the request's URL (none for an IP address), or Istio's outbound_.<port>_.<subset>_.<host> with ISTIO_MUTUAL; with SIMPLE and MUTUAL the certificate must carry the SNI sent unless subjectAltNames is set",
    },
    [`${base}.subjectAltNames`]: {
      status: 'supported',
      reason:
        "the server certificate must carry one of them (DNS, IP or URI names, compared exactly; a wildcard certificate name covers one label) instead of the host name; unset, a ServiceEntry host's subjectAltNames and WorkloadEntry service accounts apply (with ISTIO_MUTUAL, a Kubernetes Service's alpha.istio.io service-account annotations too)",
    },
    [`${base}.caCrl`]: { status: 'supported', reason: "checked for the server certificate only (OpenSSL's CRL check of the leaf)" },
    [`${base}.credentialName`]: {
      status: 'supported',
      reason:
        "the client certificate, key and CA come from the Secret of that name in the DestinationRule's namespace, read and watched through the Kubernetes API (`tls.crt`/`tls.key`/`ca.crt`, or `cert`/`key`/`cacert` with the CA also from `<name>-cacert`); an update is used whole for new connections, a bad one (key mismatch, expired) refused and reported (credentialRejected) while the last good set serves; without the API, with a Secret missing or unusable, or a 403 (the error names the RBAC rule needed), requests fail with TlsCredentialUnavailableError (ERR_MESH_TLS_CREDENTIAL) and nothing is sent",
    },
  };
}

/** `connectionPool` and `outlierDetection` entries under `base` (a policy, or one of its ports). */
function resilience(base: string): Record<string, FieldSupport> {
  return {
    [`${base}.connectionPool`]: {
      status: 'supported',
      reason:
        'limits are checked before a request is sent; an overflow is answered 503 with `x-envoy-overloaded: true` without touching the network, as Envoy does (docs/resilience.md)',
    },
    [`${base}.connectionPool.tcp.maxConnections`]: {
      status: 'supported',
      reason: "cluster-wide, as in Envoy: each endpoint's connection pool gets an equal share, rounded up",
    },
    [`${base}.connectionPool.tcp.tcpKeepalive.interval`]: {
      status: 'supported',
      reason:
        "set on each connection with `socket.setKeepAlive` (whole seconds, at least 1 s); a Node release whose `setKeepAlive` lacks the interval argument (added in 2026; Node 24.21 has it) keeps the system's interval",
    },
    [`${base}.connectionPool.tcp.tcpKeepalive.probes`]: {
      status: 'supported',
      reason:
        "set on each connection with `socket.setKeepAlive`; a Node release whose `setKeepAlive` lacks the count argument (added in 2026; Node 24.21 has it) keeps the system's count",
    },
    [`${base}.connectionPool.http.idleTimeout`]: {
      status: 'supported',
      reason:
        "when unset (Envoy's default is 1 h) idle connections close after undici's 4 s or the server's keep-alive hint, so a connection the server is closing is not reused",
    },
    [`${base}.connectionPool.http.http2MaxRequests`]: {
      status: 'supported',
      reason: 'limits outstanding requests of any protocol, as Envoy applies `max_requests`',
    },
    [`${base}.connectionPool.http.http2KeepAlive.timeout`]: {
      status: 'supported',
      reason:
        "with `interval` set, an HTTP/2 connection that receives neither the PING's ACK nor any other frame for `interval + timeout` is closed and the next request opens a new one (Envoy extends the wait on any frame too); without `interval` no PING is sent and the timeout has no effect",
    },
    [`${base}.connectionPool.http.h2UpgradePolicy`]: {
      status: 'supported',
      reason: 'UPGRADE speaks HTTP/2 to the endpoints (prior knowledge over cleartext); a port declared HTTP2, GRPC or GRPC-WEB always does, as in Istio',
    },
    [`${base}.connectionPool.http.useClientProtocol`]: {
      status: 'supported',
      reason:
        "keeps the caller's protocol, which for a call through the dispatcher (fetch, undici.request) is HTTP/1.1, and makes h2UpgradePolicy ineffective, as in Istio",
    },
    [`${base}.outlierDetection`]: {
      status: 'supported',
      reason:
        'consecutive-error detection as istiod configures Envoy (success-rate detection off); ejected hosts leave the balancer until returned, minHealthPercent is the panic threshold; ejections are `ejection` events (docs/resilience.md)',
    },
    [`${base}.outlierDetection.consecutiveErrors`]: notApplicable(
      'deprecated, and ignored behind a sidecar too: istiod only warns and configures nothing from it; use consecutiveGatewayErrors or consecutive5xxErrors',
    ),
  };
}

/** TrafficPolicy entries under `base` (the top-level policy, or a subset's). */
function trafficPolicy(base: string): Record<string, FieldSupport> {
  return {
    ...resilience(base),
    [`${base}.loadBalancer`]: {
      status: 'supported',
      reason:
        'simple, consistentHash (ringHash, maglev), localityLbSetting and warmup as Envoy applies them; the annotation `sidecarless.io/load-balancer` selects a registered policy such as PEAK_EWMA instead (docs/http.md)',
    },
    [`${base}.loadBalancer.zoneAwareLbSetting`]: notYet(BALANCER),
    [`${base}.loadBalancer.consistentHash.useSourceIp`]: {
      status: 'supported',
      reason: 'every call of one process has the same source address, so all of them go to one endpoint, as from one pod behind a sidecar',
    },
    [`${base}.loadBalancer.consistentHash.httpHeaderName`]: supported,
    [`${base}.loadBalancer.consistentHash.httpQueryParameterName`]: supported,
    [`${base}.loadBalancer.consistentHash.httpCookie`]: {
      status: 'supported',
      reason:
        'with a `ttl`, a request without the cookie gets a new value, is routed by it and its response sets it (`Set-Cookie: name="value"; Max-Age; Path; attributes; HttpOnly`), as Envoy does; Envoy derives the value from the downstream connection, in-process each such request gets a fresh random one',
    },
    [`${base}.retryBudget`]: {
      status: 'supported',
      reason:
        "Envoy's retry budget: retries (and hedges) beyond max(percent of outstanding requests, minRetryConcurrency) are refused; istiod sends the unset percent as 0.2 (0.2% to Envoy), here it is the documented 20%",
    },
    ...clientTls(`${base}.tls`),
    [`${base}.tunnel`]: notApplicable(
      'tunnels raw TCP connections through an HTTP CONNECT/POST proxy, which is how Envoy carries opaque TCP; sidecarless carries requests, not connections',
    ),
    [`${base}.proxyProtocol`]: notApplicable(
      "prepends a PROXY protocol header so the upstream learns the downstream client's address; an in-process client is itself the downstream client",
    ),
    [`${base}.portLevelSettings`]: {
      status: 'supported',
      reason: 'merged as Istio does: port-level sections replace the destination-level ones whole, without inheriting',
    },
    ...resilience(`${base}.portLevelSettings[]`),
    ...clientTls(`${base}.portLevelSettings[].tls`),
    [`${base}.portLevelSettings[].loadBalancer.zoneAwareLbSetting`]: notYet(BALANCER),
  };
}

/**
 * Support of each field, by kind and field path (`spec.http[].retries`; `[]` marks list items and
 * `{}` map values, both optional). A field not listed has the status of its nearest listed
 * ancestor. To mark a field implemented, change its entry to `supported` (or delete the entry when
 * the parent is supported); `docs/config-reference.md` is generated from this table.
 */
export const FIELD_SUPPORT: Readonly<Record<SchemaKind, Readonly<Record<string, FieldSupport>>>> = {
  VirtualService: {
    spec: supported,
    'spec.gateways': { ...supported, values: MESH_ONLY },
    'spec.http': supported,
    'spec.http[].match': {
      status: 'supported',
      reason: "sourceLabels, sourceNamespace and gateways are evaluated against the calling application's own labels and namespace",
    },
    'spec.http[].match[].gateways': { ...supported, values: MESH_ONLY },
    'spec.http[].match[].statPrefix': notYet(TELEMETRY),
    'spec.http[].route[].headers': {
      status: 'supported',
      reason:
        "with one destination its rules follow the route's (its `set` wins); with several, the route's follow (the route's `set` wins), as istiod lays them out for Envoy; a `host` rule rewrites the authority unless the route rewrites it",
    },
    'spec.http[].timeout': {
      status: 'supported',
      reason:
        'runs from dispatch (time waiting for a connection counts); when it passes before a response the caller gets 504 "upstream request timeout" and the connection is closed',
    },
    'spec.http[].retries': {
      status: 'supported',
      reason:
        "istiod's conversion: unset gives Istio's default (2 retries on connect-failure, refused-stream, unavailable, cancelled and 503, each to a host not tried before), `attempts: 0` turns retries off, a `retryOn` replaces conditions and status codes; Envoy's back-off (25 ms base or `backoff`, 10x cap, full jitter); a response is passed on only once no retry will follow",
    },
    'spec.http[].retries.retryRemoteLocalities': {
      status: 'supported',
      reason: "retries leave the locality priorities already tried (Envoy's previous_priorities), from the first retry on",
    },
    'spec.http[].fault': {
      status: 'supported',
      reason: "an unset percentage injects nothing, as in Istio; the delay is decided first and the abort after it, as in Envoy's fault filter",
    },
    'spec.http[].fault.abort.grpcStatus': {
      status: 'supported',
      reason: 'a gRPC request (content-type application/grpc) gets a trailers-only answer: HTTP 200 with grpc-status and grpc-message',
    },
    'spec.http[].fault.abort.http2Error': notApplicable(
      'istiod refuses it ("HTTP/2 abort fault injection not supported yet"), and so does sidecarless: a VirtualService with it is rejected',
    ),
    'spec.http[].fault.delay.exponentialDelay': notApplicable(
      'istiod refuses it ("exponentialDelay not supported yet"), and so does sidecarless: a VirtualService with it is rejected',
    ),
    'spec.http[].rewrite': supported,
    'spec.http[].redirect': supported,
    'spec.http[].directResponse': supported,
    'spec.http[].headers': {
      status: 'supported',
      reason: 'removals first, then `set`, then `add`, as Envoy applies them; a `host` (or `:authority`) rule becomes an authority rewrite, as istiod makes it',
    },
    'spec.http[].mirror': {
      status: 'supported',
      reason:
        'fire and forget after the request is sent, authority suffixed `-shadow`; only requests whose body can be sent twice without buffering (none, a string, a Buffer) are mirrored, so a streamed body (every `fetch` body) is not',
    },
    'spec.http[].mirrors': {
      status: 'supported',
      reason: 'as `mirror`; one random draw per request decides every mirror, as in Envoy',
    },
    'spec.http[].mirrorPercentage': supported,
    'spec.http[].mirrorPercent': supported,
    'spec.http[].mirror_percent': supported,
    'spec.http[].corsPolicy': notApplicable('CORS answers browsers; browsers reach the mesh through an ingress gateway, never through an in-process client'),
    'spec.tcp': notApplicable(`routes opaque TCP connections; ${NO_CAPTURE}`),
    'spec.tls': {
      status: 'supported',
      reason:
        "applies to the ports whose protocol is TLS or HTTPS (ServiceEntry `ports[].protocol`; a Kubernetes Service port's `appProtocol`, else its `tls-`/`https-` name prefix), and only `tls` routes do: `http` routes never apply to such ports. An https:// request there keeps its own TLS end to end (SNI = the URL's host name, certificate checked against it); no route timeout, retry, fault, header rule or mirror applies (Envoy's tcp_proxy). A plaintext http:// request to such a port fails with TlsPortPlaintextError (ERR_MESH_TLS_PORT_PLAINTEXT), nothing sent. When no tls match applies to the caller and port, the service itself is the destination, as istiod's fallback filter chain; when some do but none matches the SNI, NoTlsRouteError (ERR_MESH_NO_TLS_ROUTE), nothing sent",
    },
    'spec.tls[].match': {
      status: 'supported',
      reason:
        "port, sourceLabels, sourceNamespace and gateways are decided for the calling application's own labels and namespace and the port called, as istiod does when it builds the listener; a match whose sniHosts and destinationSubnets repeat an earlier one's is never reached",
    },
    'spec.tls[].match[].sniHosts': {
      status: 'supported',
      reason:
        "matched against the URL's host name (an IP address URL sends no SNI and matches no sniHosts); as Envoy ranks filter chains, an exact name beats a `*.` wildcard and a longer wildcard a shorter one, whatever the order written; a wildcard covers names under it at any depth, never its own suffix",
    },
    'spec.tls[].match[].destinationSubnets': {
      status: 'supported',
      reason:
        "matched against the address the call goes to: the URL's IP address, else the ServiceEntry's `addresses`; as in Envoy, the most specific subnet holding it is chosen before server names, without falling back to a less specific one",
    },
    'spec.tls[].match[].gateways': { ...supported, values: MESH_ONLY },
    'spec.tls[].route': {
      status: 'supported',
      reason:
        "one weighted pick per request among the destinations (host, subset, port), then the balancer's pick among the endpoints; a DestinationRule's TLS settings for the destination apply to the https:// connection as for any https:// URL",
    },
  },
  DestinationRule: {
    spec: supported,
    'spec.trafficPolicy': {
      status: 'supported',
      reason: "merged (top level < subset < port) and shown by `sidecarless explain`; each setting's own entry below says whether it is applied",
    },
    ...trafficPolicy('spec.trafficPolicy'),
    'spec.subsets[].trafficPolicy': {
      status: 'supported',
      reason: "merged over the top-level policy and shown by `sidecarless explain`; each setting's own entry below says whether it is applied",
    },
    ...trafficPolicy('spec.subsets[].trafficPolicy'),
  },
  ServiceEntry: {
    spec: supported,
    'spec.resolution': {
      status: 'supported',
      reason:
        'DNS and DNS_ROUND_ROBIN names are resolved by the mesh itself (A/AAAA, refreshed on the TTL, the last good answer kept when a lookup fails; see docs/configuration.md); NONE and DYNAMIC_DNS send the request to the host as the caller named it, resolved when connecting',
    },
    'spec.endpoints[].address': {
      status: 'supported',
      reason:
        "with resolution DNS or DNS_ROUND_ROBIN a name is resolved and every address it answers inherits the endpoint's labels, weight and locality, so subsets can select it",
    },
    'spec.subjectAltNames': {
      status: 'supported',
      reason:
        "the identities the service's workloads may present: checked on the server certificate under ISTIO_MUTUAL and auto mTLS, and under SIMPLE and MUTUAL when the DestinationRule names no subjectAltNames, as istiod does (with the service accounts of WorkloadEntries; docs/mtls.md)",
    },
    'spec.location': {
      status: 'supported',
      reason: 'MESH_INTERNAL services get auto mTLS (mTLS to endpoints labelled security.istio.io/tlsMode: istio); MESH_EXTERNAL, the default, never does',
    },
  },
  WorkloadEntry: {
    spec: supported,
    'spec.serviceAccount': {
      status: 'supported',
      reason:
        "the endpoint's identity (spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>), checked under mesh mTLS; without a security.istio.io/tlsMode label it makes the endpoint one of the mesh for auto mTLS, as in Istio",
    },
  },
  Sidecar: {
    spec: supported,
    'spec.egress[].port': notYet(DATA_PATH),
    'spec.egress[].bind': notApplicable(NO_CAPTURE),
    'spec.egress[].captureMode': notApplicable(NO_CAPTURE),
    'spec.ingress': notApplicable(NO_LISTENER),
    'spec.inboundConnectionPool': notApplicable(NO_LISTENER),
    'spec.outboundTrafficPolicy': {
      status: 'supported',
      reason:
        'REGISTRY_ONLY fails calls to hosts outside the registry with UnknownHostError (where Envoy answers 502 from its BlackHoleCluster); the `outboundTrafficPolicy` mesh option overrides it',
    },
    'spec.outboundTrafficPolicy.egressProxy': notApplicable(`forwards traffic to unknown hosts, as captured by the sidecar, to an egress proxy; ${NO_CAPTURE}`),
  },
  PeerAuthentication: {
    spec: {
      status: 'supported',
      reason:
        "enforced on the inbound servers the mesh creates or secures (mesh.createServer, createHttp2Server, secureServer) for this workload's namespace and labels, composed as istiod does (mesh < namespace < workload < port, UNSET inherits, oldest wins); on the client side, a destination namespace's namespace-wide (else mesh-wide) mode DISABLE turns auto mTLS off, as istiod infers it; see docs/mtls.md",
    },
    'spec.portLevelMtls': {
      status: 'supported',
      reason: 'keyed by the port the application listens on (the container port, as in Istio)',
    },
  },
  AuthorizationPolicy: {
    spec: {
      status: 'supported',
      reason:
        "enforced on every request the server integrations admit (sidecarless/express, sidecarless/fastify, sidecarless/http) for this workload's namespace and labels: CUSTOM, then DENY, then ALLOW, as Istio evaluates them, after path normalization; a denied request gets 403 `RBAC: access denied` (docs/authorization.md)",
    },
    'spec.targetRef': notApplicable(TARGET_REFS),
    'spec.targetRefs': notApplicable(TARGET_REFS),
    'spec.provider': {
      status: 'supported',
      reason:
        'a provider the application registers (createMesh option `inbound.authorizers`) or an `envoyExtAuthzHttp` entry of the `meshConfig.extensionProviders` option; a gRPC or unknown provider denies the requests its policy matches, as Istio does',
    },
    'spec.rules[].when[].key': {
      status: 'supported',
      reason:
        "every condition key Istio documents; `experimental.envoy.filters.*` reads Envoy's dynamic metadata, which no proxy produces here: a policy with it is rejected at load",
    },
  },
  RequestAuthentication: {
    spec: {
      status: 'supported',
      reason:
        "JWTs validated with jose on every request the server integrations admit, for this workload's namespace and labels; an invalid token is 401, a missing one passes without an identity (docs/authorization.md)",
    },
    'spec.targetRef': notApplicable(TARGET_REFS),
    'spec.targetRefs': notApplicable(TARGET_REFS),
    'spec.jwtRules[].jwksUri': {
      status: 'supported',
      reason:
        "fetched by the mesh when first needed, cached, refreshed every 20 minutes (Istio's default) and at once for an unknown key id; a failed refresh keeps the keys it had",
    },
    'spec.jwtRules[].jwks_uri': { status: 'supported', reason: 'as jwksUri' },
  },
  EnvoyFilter: {
    spec: {
      status: 'supported',
      reason:
        "read only for Envoy's HTTP local rate limit (envoy.filters.http.local_ratelimit): HTTP_FILTER patches that insert it and HTTP_ROUTE / VIRTUAL_HOST patches that MERGE its typed_per_filter_config, in context SIDECAR_OUTBOUND or ANY (SIDECAR_INBOUND is compiled for the inbound side); every other patch is reported and ignored, and an EnvoyFilter with no such patch is not read at all (docs/rate-limiting.md)",
    },
    'spec.targetRefs': notApplicable('attaches the EnvoyFilter to a gateway or waypoint; an EnvoyFilter with targetRefs never applies to a sidecar'),
    'spec.configPatches[].match.proxy': notApplicable(
      'selects Envoy proxies by version or node metadata; there is no proxy here, and the patch applies as though it matched',
    ),
    'spec.configPatches[].match.listener.name': notApplicable(`selects an Envoy listener by name; ${NO_LISTENER_MATCH}`),
    'spec.configPatches[].match.listener.portName': notApplicable(`selects a gateway listener; ${NO_LISTENER_MATCH}`),
    'spec.configPatches[].match.listener.listenerFilter': notApplicable(`selects an Envoy listener filter; ${NO_LISTENER_MATCH}`),
    'spec.configPatches[].match.listener.filterChain.applicationProtocols': notApplicable(NO_LISTENER_MATCH),
    'spec.configPatches[].match.listener.filterChain.destinationPort': notApplicable(NO_LISTENER_MATCH),
    'spec.configPatches[].match.listener.filterChain.name': notApplicable(NO_LISTENER_MATCH),
    'spec.configPatches[].match.listener.filterChain.sni': notApplicable(NO_LISTENER_MATCH),
    'spec.configPatches[].match.listener.filterChain.transportProtocol': notApplicable(NO_LISTENER_MATCH),
    'spec.configPatches[].match.listener.filterChain.filter.subFilter': {
      status: 'supported',
      reason: 'an insertion point in the filter chain; the order of other HTTP filters does not matter here',
    },
    'spec.configPatches[].match.routeConfiguration.name': {
      status: 'supported',
      reason: 'as a port number: Istio names outbound route configurations by port ("9080"); a patch naming another route configuration is not applied',
    },
    'spec.configPatches[].match.routeConfiguration.vhost.name': {
      status: 'supported',
      reason: '`host:port` as the caller addressed it (the service host, fully qualified), as Istio names virtual hosts',
    },
    'spec.configPatches[].match.routeConfiguration.vhost.route.name': {
      status: 'supported',
      reason: 'the VirtualService http route name; `default` for a host no VirtualService routes',
    },
    'spec.configPatches[].match.routeConfiguration.gateway': notApplicable('selects gateway route configurations; a patch with it is not applied'),
    'spec.configPatches[].match.routeConfiguration.portName': notApplicable('selects gateway route configurations; a patch with it is not applied'),
    'spec.configPatches[].match.routeConfiguration.vhost.domainName': notYet('match virtual hosts by `name` (host:port)'),
    'spec.configPatches[].match.cluster': notApplicable('cluster patches change Envoy clusters, which sidecarless builds from DestinationRules'),
    'spec.configPatches[].match.waypoint': notApplicable('waypoints are ambient-mode proxies'),
    'spec.configPatches[].patch.filterClass': {
      status: 'supported',
      reason: 'an insertion position; the order of other HTTP filters does not matter here',
    },
  },
  RateLimitPolicy: {
    spec: { status: 'supported', reason: "sidecarless's own kind (deploy/crds/); see docs/rate-limiting.md" },
    'spec.limits[].scope': {
      status: 'supported',
      reason:
        'SHARED needs Redis, from the createMesh option rateLimit.redis; without it, or while Redis is unreachable, a SHARED limit is enforced per process',
    },
  },
};

/** Why an EnvoyFilter with no local rate-limit patch is not read (a warning, never an error). */
export const UNREAD_ENVOY_FILTER =
  "patches Envoy's own configuration and there is no Envoy here; only patches that configure Envoy's HTTP local rate limit (envoy.filters.http.local_ratelimit) are read, and this EnvoyFilter has none";

/**
 * Istio kinds sidecarless does not read, reported (as a warning) instead of being silently
 * dropped.
 */
export const UNREAD_ISTIO_KINDS: Readonly<Record<string, KindSupport>> = {
  Gateway: {
    group: 'networking.istio.io',
    status: 'not-applicable',
    reason: 'configures the ingress/egress gateway proxies at the edge of the mesh, not the workloads inside it',
  },
  WorkloadGroup: {
    group: 'networking.istio.io',
    status: 'not-applicable',
    reason: 'a template istiod uses to register VMs as WorkloadEntries; sidecarless reads the WorkloadEntries',
  },
  ProxyConfig: {
    group: 'networking.istio.io',
    status: 'not-applicable',
    reason: 'tunes the Envoy proxy process (concurrency, image, environment)',
  },
  Telemetry: {
    group: 'telemetry.istio.io',
    status: 'not-yet',
    reason: 'configure traces and metrics with the `telemetry` option of createMesh for now (docs/telemetry.md)',
  },
  IstioOperator: {
    group: 'install.istio.io',
    status: 'not-applicable',
    reason: 'installs and configures the Istio control plane (istioctl, the operator); it is not mesh configuration',
  },
  WasmPlugin: {
    group: 'extensions.istio.io',
    status: 'not-applicable',
    reason: 'extends Envoy with WebAssembly filters; there is no Envoy here',
  },
  TrafficExtension: {
    group: 'extensions.istio.io',
    status: 'not-applicable',
    reason: 'extends Envoy with filters; there is no Envoy here',
  },
};

/** `spec.http[0].match[1].headers.x-user` style paths to table keys: drop `[..]` and `{}`. */
export function supportSegments(pattern: string): string[] {
  return pattern.replace(/\[[^\]]*\]|\{\}/g, '').split('.');
}

/**
 * The support of the field at `pattern` (a schema path such as `spec.http[].retries`): its own
 * entry or its nearest listed ancestor's, with the pattern of the entry that decided it.
 */
export function fieldSupport(kind: SchemaKind, pattern: string): { support: FieldSupport; from: string } {
  const table = FIELD_SUPPORT[kind];
  const byKey = new Map(Object.entries(table).map(([key, value]) => [supportSegments(key).join('.'), { key, value }]));
  const segments = supportSegments(pattern);
  for (let n = segments.length; n > 0; n--) {
    const hit = byKey.get(segments.slice(0, n).join('.'));
    if (hit) return { support: hit.value, from: hit.key };
  }
  return { support: supported, from: '' };
}

/** One field of a Gateway API route kind, for `docs/config-reference.md`. */
export interface GatewayRouteField {
  readonly path: string;
  readonly type: string;
  readonly status: SupportStatus;
  readonly note: string;
}

const PARENT_REFS: readonly GatewayRouteField[] = [
  {
    path: 'spec.parentRefs',
    type: 'ParentReference[]',
    status: 'supported',
    note: 'a parent of `group: ""` (or `core`) and `kind: Service` attaches the route to calls to that Service (GAMMA); other parents are skipped with a warning',
  },
  {
    path: 'spec.parentRefs[].group',
    type: 'string',
    status: 'supported',
    note: '`""` for a Service; the default, `gateway.networking.k8s.io`, with kind Gateway is an ingress or egress gateway: not applicable, skipped',
  },
  {
    path: 'spec.parentRefs[].kind',
    type: 'string',
    status: 'supported',
    note: '`Service`; `Gateway` (the default) is not applicable; a `ServiceEntry` parent is not read yet',
  },
  { path: 'spec.parentRefs[].name', type: 'string', status: 'supported', note: 'the Service: `<name>.<namespace>.svc.<cluster domain>`' },
  {
    path: 'spec.parentRefs[].namespace',
    type: 'string',
    status: 'supported',
    note: "the Service's namespace (default the route's). A route in the Service's namespace (producer route) applies to every caller; in another namespace (consumer route) only to callers in the route's namespace, and there it replaces the producer routes, as Istio orders them",
  },
  {
    path: 'spec.parentRefs[].port',
    type: 'integer',
    status: 'supported',
    note: "the route applies to calls on that port only; on other ports the Service's default route applies",
  },
  { path: 'spec.parentRefs[].sectionName', type: 'string', status: 'not-yet', note: 'not read for a Service parent (warned): use `port`' },
  {
    path: 'spec.hostnames',
    type: 'string[]',
    status: 'not-applicable',
    note: 'ignored for a Service parent, as Istio does: the route applies to calls to the Service whatever Host they name (warned)',
  },
];

const BACKEND_REFS: readonly GatewayRouteField[] = [
  {
    path: 'spec.rules[].backendRefs',
    type: 'BackendRef[]',
    status: 'supported',
    note: 'weighted destinations; a rule whose backends all weigh 0 (or has none, without a redirect) answers 500, as the Gateway API requires',
  },
  {
    path: 'spec.rules[].backendRefs[].group, kind',
    type: 'string',
    status: 'supported',
    note: 'only Services (`group: ""`, `kind: Service`, the default); another kind is an error',
  },
  {
    path: 'spec.rules[].backendRefs[].name, namespace',
    type: 'string',
    status: 'supported',
    note: "the Service (namespace default the route's; a ReferenceGrant is not required for the mesh, as in Istio)",
  },
  { path: 'spec.rules[].backendRefs[].port', type: 'integer', status: 'supported', note: 'required for a Service' },
  { path: 'spec.rules[].backendRefs[].weight', type: 'integer', status: 'supported', note: 'default 1; 0 sends nothing to the backend' },
  {
    path: 'spec.rules[].backendRefs[].filters',
    type: 'Filter[]',
    status: 'supported',
    note: 'RequestHeaderModifier and ResponseHeaderModifier, for that backend only; other types are refused (error)',
  },
];

const COMMON_FILTERS: readonly GatewayRouteField[] = [
  {
    path: 'spec.rules[].filters[].requestHeaderModifier',
    type: 'HeaderFilter',
    status: 'supported',
    note: '`set`, `add` (appends a value) and `remove` on the request sent upstream',
  },
  {
    path: 'spec.rules[].filters[].responseHeaderModifier',
    type: 'HeaderFilter',
    status: 'supported',
    note: '`set`, `add` and `remove` on the response the caller gets',
  },
  {
    path: 'spec.rules[].filters[].requestMirror',
    type: 'MirrorFilter',
    status: 'supported',
    note: 'a copy of each request (or `percent`, or `fraction`) goes to the backendRef Service; its answer is dropped',
  },
  {
    path: 'spec.rules[].filters[].extensionRef',
    type: 'LocalObjectReference',
    status: 'not-applicable',
    note: 'names an implementation-specific filter; refused (error) rather than ignored',
  },
];

/** What sidecarless does with each field of HTTPRoute and GRPCRoute (gateway.networking.k8s.io). */
export const GATEWAY_ROUTE_FIELDS: Readonly<Record<'HTTPRoute' | 'GRPCRoute', readonly GatewayRouteField[]>> = {
  HTTPRoute: [
    ...PARENT_REFS,
    {
      path: 'spec.rules',
      type: 'HTTPRouteRule[]',
      status: 'supported',
      note: 'one route entry per match, ordered by the Gateway API precedence as istiod orders them: Exact over PathPrefix over RegularExpression paths, longer first, then a method match, then more header matches, then more query matches; older routes win ties',
    },
    {
      path: 'spec.rules[].name',
      type: 'string',
      status: 'supported',
      note: 'the route name (shown by explain); default `<namespace>.<name>.<rule index>`, as Istio names it',
    },
    {
      path: 'spec.rules[].matches[].path',
      type: 'HTTPPathMatch',
      status: 'supported',
      note: '`Exact`, `PathPrefix` (whole path elements: `/api` matches `/api` and `/api/x`, not `/apis`; the default, with `/`) and `RegularExpression` (RE2, whole path)',
    },
    {
      path: 'spec.rules[].matches[].headers',
      type: 'HTTPHeaderMatch[]',
      status: 'supported',
      note: '`Exact` (default) or `RegularExpression`; names case-insensitive',
    },
    { path: 'spec.rules[].matches[].queryParams', type: 'HTTPQueryParamMatch[]', status: 'supported', note: '`Exact` (default) or `RegularExpression`' },
    { path: 'spec.rules[].matches[].method', type: 'string', status: 'supported', note: 'exact HTTP method' },
    {
      path: 'spec.rules[].filters',
      type: 'HTTPRouteFilter[]',
      status: 'supported',
      note: "checked by the CRD's schema and CEL rules: the field matching `type`, no repeated header modifier, redirect, rewrite or CORS filter, not both a redirect and a rewrite, no redirect with backendRefs",
    },
    {
      path: 'spec.rules[].filters[].externalAuth',
      type: 'HTTPExternalAuthFilter',
      status: 'not-yet',
      note: 'refused (error) rather than ignored; an AuthorizationPolicy with a CUSTOM provider does external authorization',
    },
    ...COMMON_FILTERS,
    {
      path: 'spec.rules[].filters[].requestRedirect',
      type: 'HTTPRequestRedirectFilter',
      status: 'supported',
      note: "answered by the mesh, nothing sent upstream: `scheme`, `hostname`, `port` (unset: the scheme's default port when a scheme is set, else the request's port, as istiod), `path` (`ReplaceFullPath` or `ReplacePrefixMatch`), `statusCode` (default 302, as the CRD defaults it)",
    },
    {
      path: 'spec.rules[].filters[].urlRewrite',
      type: 'HTTPURLRewriteFilter',
      status: 'supported',
      note: "`hostname` (the Host sent upstream) and `path`: `ReplaceFullPath`, or `ReplacePrefixMatch` of the rule's one PathPrefix match (`/foo` to `/` turns `/foo/bar` into `/bar`)",
    },
    {
      path: 'spec.rules[].filters[].cors',
      type: 'HTTPCORSFilter',
      status: 'not-applicable',
      note: "ignored with a warning, as a VirtualService's corsPolicy: CORS answers browsers, which reach the mesh through an ingress gateway, never through an in-process client",
    },
    ...BACKEND_REFS,
    {
      path: 'spec.rules[].timeouts.request',
      type: 'duration',
      status: 'supported',
      note: 'the route timeout (504 "upstream request timeout"); `0s` means none',
    },
    {
      path: 'spec.rules[].timeouts.backendRequest',
      type: 'duration',
      status: 'supported',
      note: 'as istiod: with `retry`, the timeout of each try; without, it becomes the route timeout (replacing `request`); at most `request`',
    },
    {
      path: 'spec.rules[].retry',
      type: 'HTTPRouteRetry',
      status: 'supported',
      note: 'as istiod converts it: `attempts` (unset: 2; the CRD requires at least 1), `codes` (400-599) retried besides connection failures (connect-failure, refused-stream, unavailable, cancelled), `backoff` the base interval. Unset, the mesh default policy applies (2 retries on connection failures and 503), as in Istio',
    },
    {
      path: 'spec.rules[].sessionPersistence',
      type: 'SessionPersistence',
      status: 'not-yet',
      note: 'warned; a DestinationRule `consistentHash` gives affinity',
    },
    {
      path: 'spec.useDefaultGateways',
      type: 'string',
      status: 'not-applicable',
      note: '`All` attaches the route to default (ingress or egress) Gateways, which run their own proxy: warned',
    },
  ],
  GRPCRoute: [
    ...PARENT_REFS,
    { path: 'spec.rules', type: 'GRPCRouteRule[]', status: 'supported', note: 'one route entry per match, as for HTTPRoute' },
    {
      path: 'spec.rules[].matches[].method',
      type: 'GRPCMethodMatch',
      status: 'supported',
      note: '`Exact` (default): `service` and `method` match the `/<service>/<method>` path, either alone matches every method of the service or that method of any service; `RegularExpression`: RE2 on each part',
    },
    { path: 'spec.rules[].matches[].headers', type: 'GRPCHeaderMatch[]', status: 'supported', note: '`Exact` (default) or `RegularExpression`' },
    { path: 'spec.rules[].filters', type: 'GRPCRouteFilter[]', status: 'supported', note: 'RequestHeaderModifier, ResponseHeaderModifier, RequestMirror' },
    ...COMMON_FILTERS,
    ...BACKEND_REFS,
    { path: 'spec.rules[].sessionPersistence', type: 'SessionPersistence', status: 'not-yet', note: 'warned' },
  ],
};
