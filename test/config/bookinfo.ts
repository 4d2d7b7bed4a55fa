import type { SchemaKind } from '../../src/config/resource.js';

/**
 * Realistic Istio resources for the bookinfo sample (productpage -> reviews v1/v2/v3 -> ratings),
 * with `VERSION` standing for the apiVersion's version.
 */
export const BOOKINFO: Readonly<Record<SchemaKind, string>> = {
  VirtualService: `
apiVersion: networking.istio.io/VERSION
kind: VirtualService
metadata:
  name: reviews
  labels:
    app: reviews
spec:
  hosts:
  - reviews
  http:
  - name: jason-to-v2
    match:
    - headers:
        end-user:
          exact: jason
      uri:
        prefix: /reviews
    route:
    - destination:
        host: reviews
        subset: v2
  - name: canary
    match:
    - uri:
        regex: '^/reviews/[0-9]+$'
      queryParams:
        debug:
          exact: "true"
      sourceLabels:
        app: productpage
      ignoreUriCase: true
    route:
    - destination:
        host: reviews
        subset: v1
        port:
          number: 9080
      weight: 90
    - destination:
        host: reviews
        subset: v3
      weight: 10
  - route:
    - destination:
        host: reviews
        subset: v1
`,
  DestinationRule: `
apiVersion: networking.istio.io/VERSION
kind: DestinationRule
metadata:
  name: reviews
  namespace: bookinfo
spec:
  host: reviews
  trafficPolicy:
    loadBalancer:
      simple: LEAST_REQUEST
    connectionPool:
      tcp:
        maxConnections: 100
        connectTimeout: 30ms
      http:
        http1MaxPendingRequests: 10
        maxRequestsPerConnection: 1
    outlierDetection:
      consecutive5xxErrors: 7
      interval: 5m
      baseEjectionTime: 15m
  subsets:
  - name: v1
    labels:
      version: v1
  - name: v2
    labels:
      version: v2
    trafficPolicy:
      loadBalancer:
        simple: ROUND_ROBIN
  - name: v3
    labels:
      version: v3
`,
  ServiceEntry: `
apiVersion: networking.istio.io/VERSION
kind: ServiceEntry
metadata:
  name: ratings
spec:
  hosts:
  - ratings.default.svc.cluster.local
  location: MESH_INTERNAL
  ports:
  - number: 9080
    name: http
    protocol: HTTP
  resolution: STATIC
  endpoints:
  - address: 127.0.0.2
    labels:
      app: ratings
      version: v1
    locality: us-east1/us-east1-b
  - address: 127.0.0.3
    labels:
      app: ratings
      version: v2
    weight: 2
`,
  WorkloadEntry: `
apiVersion: networking.istio.io/VERSION
kind: WorkloadEntry
metadata:
  name: details-vm-1
spec:
  address: 127.0.0.4
  ports:
    http: 9080
  labels:
    app: details
    version: v1
  serviceAccount: bookinfo-details
  locality: us-east1/us-east1-b
  weight: 1
`,
  Sidecar: `
apiVersion: networking.istio.io/VERSION
kind: Sidecar
metadata:
  name: productpage
spec:
  workloadSelector:
    labels:
      app: productpage
  egress:
  - hosts:
    - "./*"
    - "istio-system/*"
`,
  PeerAuthentication: `
apiVersion: security.istio.io/VERSION
kind: PeerAuthentication
metadata:
  name: reviews
spec:
  selector:
    matchLabels:
      app: reviews
  mtls:
    mode: STRICT
  portLevelMtls:
    9080:
      mode: PERMISSIVE
`,
  AuthorizationPolicy: `
apiVersion: security.istio.io/VERSION
kind: AuthorizationPolicy
metadata:
  name: ratings-viewer
spec:
  selector:
    matchLabels:
      app: ratings
  action: ALLOW
  rules:
  - from:
    - source:
        principals:
        - cluster.local/ns/default/sa/bookinfo-reviews
    to:
    - operation:
        methods:
        - GET
        paths:
        - /ratings/*
    when:
    - key: request.headers[version]
      values:
      - v1
      - v2
`,
  RequestAuthentication: `
apiVersion: security.istio.io/VERSION
kind: RequestAuthentication
metadata:
  name: ratings-jwt
spec:
  selector:
    matchLabels:
      app: ratings
  jwtRules:
  - issuer: testing@secure.istio.io
    jwksUri: https://raw.githubusercontent.com/istio/istio/release-1.24/security/tools/jwt/samples/jwks.json
    audiences: [ratings]
    fromHeaders:
    - name: x-jwt-assertion
      prefix: 'Bearer '
    outputClaimToHeaders:
    - header: x-jwt-sub
      claim: sub
`,
  EnvoyFilter: `
apiVersion: networking.istio.io/VERSION
kind: EnvoyFilter
metadata:
  name: productpage-ratelimit
spec:
  workloadSelector:
    labels:
      app: productpage
  configPatches:
  - applyTo: HTTP_FILTER
    match:
      context: SIDECAR_OUTBOUND
      listener:
        filterChain:
          filter:
            name: envoy.filters.network.http_connection_manager
    patch:
      operation: INSERT_BEFORE
      value:
        name: envoy.filters.http.local_ratelimit
        typed_config:
          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
          type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
          value:
            stat_prefix: http_local_rate_limiter
            token_bucket:
              max_tokens: 10
              tokens_per_fill: 10
              fill_interval: 60s
            filter_enabled:
              runtime_key: local_rate_limit_enabled
              default_value:
                numerator: 100
                denominator: HUNDRED
            filter_enforced:
              runtime_key: local_rate_limit_enforced
              default_value:
                numerator: 100
                denominator: HUNDRED
            response_headers_to_add:
            - append_action: OVERWRITE_IF_EXISTS_OR_ADD
              header:
                key: x-local-rate-limit
                value: 'true'
`,
  RateLimitPolicy: `
apiVersion: sidecarless.io/VERSION
kind: RateLimitPolicy
metadata:
  name: reviews-limits
spec:
  host: reviews
  workloadSelector:
    matchLabels:
      app: productpage
  limits:
  - name: per-user
    match:
      routes: [jason-to-v2]
      methods: [GET]
      headers:
        end-user:
          prefix: j
    key:
      header: end-user
      maxKeys: 1000
    tokenBucket:
      maxTokens: 20
      tokensPerFill: 10
      fillInterval: 1s
  - name: all-callers
    tokenBucket:
      maxTokens: 100
      fillInterval: 100ms
    scope: SHARED
`,
};

/** The bookinfo example of `kind` as `networking.istio.io/<version>` (or its own group). */
export function bookinfo(kind: SchemaKind, version = kind === 'EnvoyFilter' ? 'v1alpha3' : kind === 'RateLimitPolicy' ? 'v1alpha1' : 'v1'): string {
  return BOOKINFO[kind].replace('VERSION', version);
}
