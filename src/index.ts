// The root entry: what an application uses to create, configure and call the mesh, and to handle
// its errors and events. What inspection returns is in `sidecarless/inspect` (src/inspect/public.ts);
// compiled internals (route tables, compiled policies) are not exported.
export { createMesh } from './create-mesh.js';
// Types only: the class loads with the mesh, when `createMesh` is first called.
export type { Mesh, MeshOptions, MeshEvents } from './mesh.js';
export type { DiscoveryMode, KubernetesOptions } from './kubernetes/kubernetes-options.js';
export type { KubernetesStatus } from './kubernetes/mesh-kubernetes.js';
export type { KubeCollectionReport } from './kubernetes/api-watcher.js';
export type { KubernetesDiscoveryNote } from './kubernetes/discovery/kubernetes-endpoint-source.js';
export { DnsLookupError, DnsOptionError } from './discovery/dns/errors.js';
export type { DnsEndpointChange, DnsFamily, DnsLookupFailure, MeshDnsOptions } from './discovery/dns/index.js';
export { MeshError, MeshClosedError, InvalidRequestError } from './errors.js';
export { MeshConfigError } from './config/errors.js';
export { DiscoveryOptionError, KubernetesApiError, KubernetesClientMissingError, KubernetesConfigError } from './kubernetes/errors.js';
export { Http2PingTimeoutError } from './transport/errors.js';
export type { ConfigIssue, IssueSeverity, ResourceRef, SourceLocation } from './issue.js';
export { formatIssue } from './issue.js';
export type { ConfigSource, SourceUpdate } from './config/sources/source.js';
export type { RawDocument, FieldPath } from './config/document.js';
export type { ResourceKind } from './config/resource.js';
export { RESOURCE_KINDS } from './config/resource.js';
export type { ConfigList, ConfigObject, ConfigObjectMeta, InlineConfig } from './config/config-object.js';
export type {
  AuthorizationPolicy,
  DestinationRule,
  EnvoyFilter,
  PeerAuthentication,
  RateLimitPolicy,
  RequestAuthentication,
  ServiceEntry,
  Sidecar,
  VirtualService,
  WorkloadEntry,
} from './config/schema/generated/types.js';
/** Every type of a resource's `spec`, as the CRD schemas define it: `istio.HTTPRoute`, `istio.TrafficPolicy`... */
export type * as istio from './config/schema/generated/types.js';
export type { GRPCRoute, HTTPRoute } from './config/schema/generated/gateway-api-types.js';
/** The Gateway API route types, as the CRDs define them: `gatewayApi.HTTPRouteSpec`, `gatewayApi.HTTPRouteRule`... */
export type * as gatewayApi from './config/schema/generated/gateway-api-types.js';
export type { Endpoint, Locality } from './discovery/endpoint.js';
export type { KubeCollectionStatus, KubeResourceType } from './kubernetes/collection.js';
export type { CancelTimer, Clock, RandomSource, TimerKind } from './clock.js';
export { registerBalancer, balancerNames } from './balancer/user-balancers.js';
export { BalancerConfigError } from './balancer/balancer.js';
export type { BalancerFactory } from './balancer/user-balancers.js';
export type { BalancerOptions } from './balancer/options.js';
export type { LoadBalancer, BalancerDeps, PickContext } from './balancer/balancer.js';
export type { Host } from './balancer/host.js';
export { RouteTimeoutError, UnknownHostError, PerTryTimeoutError, DeadlineExceededError } from './outbound/errors.js';
export { NoTlsRouteError, TlsPortPlaintextError } from './routing/errors.js';
export { OverflowError, RateLimitedError } from './resilience/errors.js';
export { runWithDeadline, remainingTimeMs, parseGrpcTimeout } from './resilience/deadline.js';
export { HEDGE_AFTER_ANNOTATION } from './resilience/hedge-policy.js';
export type { OutboundTrafficPolicy } from './http/mesh-dispatcher.js';
export { LOAD_BALANCER_ANNOTATION } from './balancer/annotation.js';
export { BreakerOpenError } from './resilience/errors.js';
export { TlsCredentialUnavailableError, TlsNotSupportedError, UpstreamTlsError } from './security/errors.js';
export type { AttemptOutcome, LocalOriginFailure } from './resilience/outcome.js';
export type { BreakerEvent, BreakerFallbackResponse, BreakerOptions, BreakerRequest, BreakerState, EjectionEvent, EjectionReason } from './resilience/index.js';
export { RateLimitStoreError } from './resilience/errors.js';
export type { RateLimitOptions } from './resilience/rate-limit/rate-limiting.js';
export type { RateLimitRedisOptions, RedisClientLike } from './resilience/rate-limit/shared-store.js';
export type { RateLimiter, RateLimitVerdict } from './resilience/rate-limit/limiter.js';
export { LocalLimiter } from './resilience/rate-limit/local-limiter.js';
export type { TokenBucketSpec } from './resilience/rate-limit/token-bucket.js';
export { AdminOptionError } from './inspect/admin-option-error.js';
export { consoleLogger } from './inspect/logger.js';
export { MESH_LOG_EVENTS } from './inspect/log-events.js';
export type { MeshLogEvent } from './inspect/log-events.js';
export type { ConsoleLike, MeshLogger } from './inspect/logger.js';
export type { AdminServerOptions } from './inspect/admin-server.js';
export type { TelemetryOptions, TracingMode, WorkloadIdentity } from './telemetry/telemetry-options.js';
export { peerIdentity } from './security/peer-identity.js';
export type { PeerIdentity, PeerIdentitySource } from './security/peer-identity.js';
export { CertificateError, InvalidSpiffeIdError, PeerRejectedError, SecurityOptionError, WorkloadCertificateUnavailableError } from './security/errors.js';
export { TLS_MODE_LABEL } from './security/mesh-tls.js';
export type { CertificateProblem, ClientCredentialRejection, PeerRejection } from './security/errors.js';
export type { CertificateBundle, CertificateFile, CertificateFiles } from './security/certificate-bundle.js';
export { LAYOUT_FILES, WELL_KNOWN_CERTIFICATE_DIRECTORIES } from './security/certificate-layouts.js';
export type { CertificateLayout, CertificateOptions } from './security/certificate-layouts.js';
export { FileCertificateSource } from './security/certificate-source.js';
export { KubernetesSecretSource } from './security/kubernetes-secret-source.js';
export type { SecretReference } from './security/kubernetes-secret-source.js';
export type { CertificatePaths, CertificateSource, FileCertificateSourceOptions } from './security/certificate-source.js';
export type { WorkloadCertificates, WorkloadCertificatesEvents } from './security/workload-certificates.js';
export { formatSpiffeId, parseSpiffeId } from './security/spiffe-id.js';
export type { SpiffeId } from './security/spiffe-id.js';
export type { InboundHttp2Options, InboundServerOptions } from './server/secure-server.js';
export { RESPONSE_FLAGS_HEADER } from './telemetry/response-flags.js';
export { AccessDeniedError, JwtAuthenticationError } from './security/authz/errors.js';
export type { AuthorizerFunction, CustomVerdict } from './security/authz/custom-authorizer.js';
/** The request a custom authorizer (`AuthorizerFunction`) is given. */
export type { InboundRequest } from './security/inbound/inbound-request.js';
export type { EnvoyExtAuthzHttpProvider, ExtensionProvider } from './security/authz/ext-authz-http.js';
export type { InboundOptions, MeshConfigOptions } from './server/inbound/inbound-options.js';
export type { PathNormalization } from './server/inbound/path-normalization.js';
export type { InboundAuditEvent } from './security/inbound/inbound-reporter.js';
export type { InboundReply, InboundDenialReason } from './security/inbound/inbound-layer.js';
export type { VerifiedJwt } from './security/inbound/inbound-request.js';
export type { InboundCapable, InboundEntry, InboundRequestView } from './server/inbound/inbound-api.js';
export { meshRequest } from './server/inbound/inbound-api.js';
