import type { Attributes, Counter, Histogram, Meter, ObservableCallback, ObservableGauge, ObservableResult } from '@opentelemetry/api';
import type { OtelApi } from './otel-api.js';
import { HTTP_DURATION_BUCKETS_S, METRIC_HTTP_CLIENT_REQUEST_DURATION, METRIC_HTTP_SERVER_REQUEST_DURATION } from './semconv.js';

/** Envoy's default histogram buckets, which Istio uses for `istio_request_duration_milliseconds`. */
const ISTIO_DURATION_BUCKETS_MS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
/** Istio's buckets for `istio_request_bytes` and `istio_response_bytes`. */
const ISTIO_BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];

/** Endpoint counts of one cluster by state, read when metrics are collected. */
export interface ClusterHealth {
  readonly cluster: string;
  readonly service: string;
  readonly subset: string | undefined;
  readonly healthy: number;
  readonly ejected: number;
  readonly terminating: number;
}

/** The workload certificate in use, read when metrics are collected. */
export interface CertificateExpiry {
  readonly source: string;
  /** The certificate's SPIFFE ID, or '' without one. */
  readonly identity: string;
  readonly secondsLeft: number;
}

interface Instruments {
  readonly meter: Meter;
  readonly httpDuration: Histogram;
  readonly serverDuration: Histogram;
  readonly inboundDenied: Counter;
  readonly authzDryRun: Counter;
  readonly istioRequests: Counter | undefined;
  readonly istioDuration: Histogram | undefined;
  readonly istioRequestBytes: Histogram | undefined;
  readonly istioResponseBytes: Histogram | undefined;
  readonly retries: Counter;
  readonly hedges: Counter;
  readonly rateLimited: Counter;
  readonly overflows: Counter;
  readonly ejections: Counter;
  readonly breakerTransitions: Counter;
  readonly snapshots: Counter;
  readonly watchRestarts: Counter;
  readonly endpoints: ObservableGauge;
  readonly inboundConnections: Counter;
  readonly certificateRotations: Counter;
  readonly credentialRotations: Counter;
  readonly certificateExpiry: ObservableGauge;
}

/**
 * The mesh's instruments on the globally registered MeterProvider. They are made again when the
 * application registers a provider after the mesh started (the API hands out no-op meters until
 * then), and not at all while none is registered: `on` is then false and nothing is recorded.
 */
export class MeshMetrics {
  private instruments: Instruments | undefined;
  private readonly noopMeter: Meter;
  private closed = false;
  private readonly observeEndpoints: ObservableCallback = (result: ObservableResult) => {
    for (const c of this.health()) {
      const base = { 'sidecarless.cluster': c.cluster, 'sidecarless.destination.host': c.service, 'sidecarless.destination.subset': c.subset ?? '' };
      result.observe(c.healthy, { ...base, 'sidecarless.endpoint.state': 'healthy' });
      result.observe(c.ejected, { ...base, 'sidecarless.endpoint.state': 'ejected' });
      result.observe(c.terminating, { ...base, 'sidecarless.endpoint.state': 'terminating' });
    }
  };

  private readonly observeCertificate: ObservableCallback = (result: ObservableResult) => {
    const c = this.certificate?.();
    if (c) result.observe(c.secondsLeft, { 'sidecarless.certificate.source': c.source, 'sidecarless.certificate.identity': c.identity });
  };

  constructor(
    private readonly api: OtelApi,
    private readonly istio: boolean,
    private readonly health: () => Iterable<ClusterHealth>,
    private readonly certificate?: () => CertificateExpiry | undefined,
  ) {
    this.noopMeter = api.createNoopMeter();
  }

  /** Instruments on the current provider, or undefined when none is registered. */
  get current(): Instruments | undefined {
    return this.instruments;
  }

  /** Called now and then (not per request): picks up a provider registered meanwhile. */
  refresh(): void {
    const meter = this.closed ? this.noopMeter : this.api.metrics.getMeter('sidecarless');
    if (this.instruments?.meter === meter) return;
    this.instruments?.endpoints.removeCallback(this.observeEndpoints);
    this.instruments?.certificateExpiry.removeCallback(this.observeCertificate);
    this.instruments = meter === this.noopMeter ? undefined : this.create(meter);
  }

  /** The mesh closed: its gauge stops reading it (the provider outlives the mesh). */
  close(): void {
    this.closed = true;
    this.refresh();
  }

  private create(meter: Meter): Instruments {
    const { ValueType } = this.api;
    const histogram = (name: string, unit: string, description: string, buckets: readonly number[]): Histogram =>
      meter.createHistogram(name, { unit, description, valueType: ValueType.DOUBLE, advice: { explicitBucketBoundaries: [...buckets] } });
    const counter = (name: string, description: string): Counter => meter.createCounter(name, { description, valueType: ValueType.INT });
    const istio = this.istio;
    const endpoints = meter.createObservableGauge('sidecarless.endpoints', {
      description: 'Endpoints of each cluster by state: healthy, ejected (outlier detection), terminating (not ready).',
      valueType: ValueType.INT,
    });
    endpoints.addCallback(this.observeEndpoints);
    const certificateExpiry = meter.createObservableGauge('sidecarless.certificate.expiry', {
      description: "Seconds until the workload certificate in use expires (negative once expired); Istio's agent reports the same as cert_expiry_seconds.",
      unit: 's',
      valueType: ValueType.DOUBLE,
    });
    certificateExpiry.addCallback(this.observeCertificate);
    return {
      meter,
      endpoints,
      certificateExpiry,
      inboundConnections: counter(
        'sidecarless.inbound.connections',
        'Inbound connections by PeerAuthentication mode and outcome (mtls, plaintext, rejected with its reason).',
      ),
      certificateRotations: counter(
        'sidecarless.certificate.rotations',
        'Workload certificate sets read: accepted (loaded or rotated) or rejected (with the problem).',
      ),
      credentialRotations: counter(
        'sidecarless.credential.rotations',
        'DestinationRule client credentials read (credentialName Secrets, tls certificate files), by source: accepted or rejected (with the problem).',
      ),
      httpDuration: histogram(METRIC_HTTP_CLIENT_REQUEST_DURATION, 's', 'Duration of HTTP client requests.', HTTP_DURATION_BUCKETS_S),
      serverDuration: histogram(METRIC_HTTP_SERVER_REQUEST_DURATION, 's', 'Duration of HTTP server requests.', HTTP_DURATION_BUCKETS_S),
      inboundDenied: counter(
        'sidecarless.inbound.denied',
        'Inbound requests the mesh answered itself: by reason (rbac, jwt, ext_authz, rate_limit, bad_request) and the policy or limit that decided.',
      ),
      authzDryRun: counter(
        'sidecarless.authz.dry_run',
        'Requests evaluated by a dry-run AuthorizationPolicy, by policy and what it would have done (allowed, denied).',
      ),
      istioRequests: istio
        ? meter.createCounter('istio_requests_total', {
            description: 'Requests, as an Istio sidecar counts them (reporter="source" for calls made, "destination" for requests served).',
            valueType: ValueType.INT,
          })
        : undefined,
      istioDuration: istio
        ? histogram('istio_request_duration_milliseconds', 'ms', 'Request duration, as an Istio sidecar measures it.', ISTIO_DURATION_BUCKETS_MS)
        : undefined,
      istioRequestBytes: istio ? histogram('istio_request_bytes', 'By', 'Request body sizes.', ISTIO_BYTES_BUCKETS) : undefined,
      istioResponseBytes: istio ? histogram('istio_response_bytes', 'By', 'Response body sizes.', ISTIO_BYTES_BUCKETS) : undefined,
      retries: counter('sidecarless.retries', 'Retry attempts sent (hedges not included).'),
      hedges: counter('sidecarless.hedges', 'Hedged attempts sent.'),
      rateLimited: counter('sidecarless.rate_limited', 'Requests refused by a client-side rate limit.'),
      overflows: counter('sidecarless.overflows', 'Requests refused by a connection-pool limit (Envoy overflow).'),
      ejections: counter('sidecarless.ejections', 'Hosts ejected by outlier detection.'),
      breakerTransitions: counter('sidecarless.breaker.transitions', 'Service breaker state changes, by the state entered.'),
      snapshots: counter('sidecarless.config.snapshots', 'Configuration changes, accepted or rejected.'),
      watchRestarts: counter('sidecarless.kubernetes.watch_restarts', 'Kubernetes watches restarted.'),
    };
  }

  /** Adds to one of the mesh's counters (no-op without a provider). */
  count(
    name:
      | 'retries'
      | 'hedges'
      | 'rateLimited'
      | 'overflows'
      | 'ejections'
      | 'breakerTransitions'
      | 'snapshots'
      | 'watchRestarts'
      | 'inboundConnections'
      | 'certificateRotations'
      | 'credentialRotations'
      | 'inboundDenied'
      | 'authzDryRun',
    attributes: Attributes,
  ): void {
    this.instruments?.[name].add(1, attributes);
  }
}
