/**
 * How the mesh traces attempts. `auto` (default): `enrich` when
 * `@opentelemetry/instrumentation-undici` is active in the process, else `own`. `own`: the mesh
 * starts a CLIENT span per attempt and injects trace context itself. `enrich`: the undici
 * instrumentation's span of each attempt gets the mesh's attributes; the mesh starts no client
 * span and injects nothing. `false`: no spans.
 */
export type TracingMode = 'auto' | 'own' | 'enrich';

/** The calling workload as Istio's `source_*` labels name it. Unknown parts are `unknown`. */
export interface WorkloadIdentity {
  /** `source_workload`: the Deployment (or other controller) name. Default `unknown`. */
  readonly name?: string;
  /** `source_workload_namespace`. Default: the mesh's namespace. */
  readonly namespace?: string;
  /** `source_app`. Default: the `app` or `app.kubernetes.io/name` workload label. */
  readonly app?: string;
  /** `source_version`. Default: the `version` or `app.kubernetes.io/version` workload label. */
  readonly version?: string;
  /** `source_principal` (a SPIFFE id). Default `unknown`: the mesh does no mTLS. */
  readonly principal?: string;
}

/**
 * Telemetry through `@opentelemetry/api` (an optional peer: without it the mesh records nothing).
 * The application owns the SDK; the mesh only uses the globally registered providers.
 */
export interface TelemetryOptions {
  /** Span per attempt; see {@link TracingMode}. Default `auto`. */
  readonly tracing?: TracingMode | false;
  /**
   * `http.client.request.duration` (in `own` tracing mode; the undici instrumentation records it
   * otherwise) and the mesh's health metrics under `sidecarless.*`. Default `true`.
   */
  readonly metrics?: boolean;
  /**
   * Istio's standard metrics with Istio's names and labels (`istio_requests_total`,
   * `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes`), as a
   * sidecar reports them with `reporter="source"`. Default `false`.
   */
  readonly istioMetrics?: boolean;
  /** The `source_*` labels of Istio metrics. */
  readonly workload?: WorkloadIdentity;
}
