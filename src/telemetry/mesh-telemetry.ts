import { channel } from 'node:diagnostics_channel';
import type { Context, Tracer, TracerProvider } from '@opentelemetry/api';
import type { ResponseHandler } from '../request-protocol.js';
import type { CancelTimer, MeshClock } from '../clock.js';
import { systemClock } from '../clock.js';
import { MeshMetrics } from './mesh-metrics.js';
import type { CertificateExpiry, ClusterHealth } from './mesh-metrics.js';
import type { OtelApi } from './otel-api.js';
import { RequestTelemetry } from './request-telemetry.js';
import type { RequestOrigin } from './request-telemetry.js';
import { RpcTelemetry } from './rpc-telemetry.js';
import type { TelemetryOptions } from './telemetry-options.js';
import { Tracing } from './tracing-mode.js';

/** instrumentation-undici starts its spans on this channel; a subscriber means it is active. */
const UNDICI_REQUEST_CREATE = channel('undici:request:create');

/** How often the registered providers and instrumentations are looked at again. */
const RECHECK_MS = 1000;

/** The labels of Istio metrics that are the same for every request of this workload. */
export interface SourceLabels {
  readonly source_workload: string;
  readonly source_workload_namespace: string;
  readonly source_principal: string;
  readonly source_app: string;
  readonly source_version: string;
}

export interface MeshTelemetryDeps {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly health: () => Iterable<ClusterHealth>;
  /** The namespace of a service the snapshot knows (ServiceEntry), for Istio's labels. */
  readonly serviceNamespace: (host: string) => string | undefined;
  /** The workload certificate in use, for the expiry gauge. */
  readonly certificate?: () => CertificateExpiry | undefined;
  /** Runs the recheck timer. Default the system clock. */
  readonly clock?: MeshClock;
}

/**
 * The mesh's link to OpenTelemetry. Whether a tracer provider is registered, whether
 * instrumentation-undici is active, and which meter provider is in force are checked at most once
 * a second, never per request; with nothing registered, a request costs one field read: a
 * one-shot timer armed at each check marks the next one due, so no clock is read per request and
 * an idle mesh has no timer ticking.
 */
export class MeshTelemetry {
  readonly tracer: Tracer;
  readonly metrics: MeshMetrics;
  readonly source: SourceLabels;
  tracing: Tracing = Tracing.Off;
  /** instrumentation-undici (or anything else) listens to undici's request channel. */
  undiciInstrumented = false;
  /** A second has passed since the last check: the next request checks again. */
  private due = true;
  private dueTimer: CancelTimer | undefined;
  private closed = false;
  private readonly noopProvider: TracerProvider;
  readonly rootContext: Context;

  constructor(
    readonly api: OtelApi,
    private options: TelemetryOptions,
    readonly deps: MeshTelemetryDeps,
  ) {
    this.tracer = api.trace.getTracer('sidecarless');
    this.noopProvider = new api.ProxyTracerProvider().getDelegate();
    this.rootContext = api.ROOT_CONTEXT;
    this.metrics = new MeshMetrics(api, options.istioMetrics === true, deps.health, deps.certificate);
    const w = options.workload ?? {};
    const labels = deps.labels;
    this.source = {
      source_workload: w.name ?? 'unknown',
      source_workload_namespace: w.namespace ?? deps.namespace,
      source_principal: w.principal ?? 'unknown',
      source_app: w.app ?? labels.app ?? labels['app.kubernetes.io/name'] ?? 'unknown',
      source_version: w.version ?? labels.version ?? labels['app.kubernetes.io/version'] ?? 'unknown',
    };
  }

  /**
   * The recorder of one request through the mesh (it wraps the caller's handler to see how the
   * request ends), or undefined when nothing would be recorded.
   */
  begin(handler: ResponseHandler, method: string, origin: RequestOrigin, serviceHost: string, path: string): RequestTelemetry | undefined {
    if (this.due) this.recheck();
    if (this.tracing === Tracing.Off && this.metrics.current === undefined) return undefined;
    return new RequestTelemetry(this, handler, method, origin, serviceHost, path);
  }

  /** The recorder of one gRPC call made through the mesh, or undefined when nothing would be recorded. */
  beginRpc(path: string, hostname: string, port: number): RpcTelemetry | undefined {
    if (this.due) this.recheck();
    if (this.tracing === Tracing.Off && this.metrics.current === undefined) return undefined;
    return new RpcTelemetry(this, path, hostname, port);
  }

  /** The inbound side's per-request entry: looks again at what is registered once a second has passed. */
  recheckIfDue(): void {
    if (this.due) this.recheck();
  }

  /** An inbound request the mesh answered itself. */
  inboundDenied(reason: string, decidedBy: string): void {
    this.metrics.count('inboundDenied', { 'sidecarless.inbound.reason': reason, 'sidecarless.authz.policy': decidedBy });
  }

  /** A dry-run AuthorizationPolicy was evaluated. */
  authzDryRun(policy: string, result: string): void {
    this.metrics.count('authzDryRun', { 'sidecarless.authz.policy': policy, 'sidecarless.authz.result': result });
  }

  /** Looks again at what is registered (also called on each new configuration snapshot). */
  recheck(): void {
    if (this.closed) return;
    this.due = false;
    if (this.dueTimer === undefined) {
      this.dueTimer = (this.deps.clock ?? systemClock).schedule(RECHECK_MS, this.markDue, 'background');
    }
    if (this.options.metrics !== false || this.options.istioMetrics === true) this.metrics.refresh();
    this.tracing = this.resolveTracing();
  }

  private readonly markDue = (): void => {
    this.dueTimer = undefined;
    this.due = true;
  };

  private resolveTracing(): Tracing {
    const mode = this.options.tracing ?? 'auto';
    this.undiciInstrumented = UNDICI_REQUEST_CREATE.hasSubscribers;
    if (mode === false) return Tracing.Off;
    const provider = this.api.trace.getTracerProvider() as TracerProvider & { getDelegate?: () => TracerProvider };
    const delegate = typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider;
    if (delegate === this.noopProvider) return Tracing.Off;
    if (mode === 'own') return Tracing.Own;
    if (mode === 'enrich') return Tracing.Enrich;
    return this.undiciInstrumented ? Tracing.Enrich : Tracing.Own;
  }

  /** Istio metrics are being recorded. */
  get istioRecording(): boolean {
    return this.metrics.current?.istioRequests !== undefined;
  }

  /** Metrics on (a provider registered and not turned off). */
  get httpMetrics(): boolean {
    return this.options.metrics !== false && this.metrics.current !== undefined;
  }

  /** The mesh closed: nothing more is recorded, and the gauge no longer reads it. */
  close(): void {
    this.options = { ...this.options, tracing: false, metrics: false, istioMetrics: false };
    this.metrics.close();
    this.tracing = Tracing.Off;
    this.closed = true;
    this.due = false;
    this.dueTimer?.();
    this.dueTimer = undefined;
  }

  /** Fed by the mesh's events. */
  ejected(cluster: string, reason: string): void {
    this.metrics.count('ejections', { 'sidecarless.cluster': cluster, 'sidecarless.ejection.reason': reason });
  }

  breakerChanged(service: string, state: string): void {
    this.metrics.count('breakerTransitions', { 'sidecarless.destination.host': service, 'sidecarless.breaker.state': state });
  }

  snapshot(outcome: 'accepted' | 'rejected'): void {
    this.metrics.count('snapshots', { 'sidecarless.config.outcome': outcome });
  }

  /** An inbound connection was classified: `outcome` mtls, plaintext or rejected (with `reason`). */
  inboundConnection(mode: string, outcome: string, reason: string): void {
    // An inbound-only workload makes no outbound requests to pick up a provider registered late.
    if (this.due) this.recheck();
    this.metrics.count('inboundConnections', { 'sidecarless.mtls.mode': mode, 'sidecarless.inbound.outcome': outcome, 'sidecarless.inbound.reason': reason });
  }

  /** A workload certificate set was read: accepted, or rejected with its problem. */
  certificateRead(outcome: 'accepted' | 'rejected', problem: string): void {
    this.metrics.count('certificateRotations', { 'sidecarless.certificate.outcome': outcome, 'sidecarless.certificate.problem': problem });
  }

  /** A DestinationRule's client credentials (a Secret, files) were read: accepted, or rejected with the problem. */
  credentialRead(source: string, outcome: 'accepted' | 'rejected', problem: string): void {
    this.metrics.count('credentialRotations', {
      'sidecarless.credential.source': source,
      'sidecarless.credential.outcome': outcome,
      'sidecarless.credential.problem': problem,
    });
  }

  /**
   * Hook for the Kubernetes source: a watch was restarted (expired resource version, a dropped
   * connection). Fed from the mesh's `kubernetesStatus` events (a rise in `status.restarts`).
   */
  watchRestarted(resource: string): void {
    this.metrics.count('watchRestarts', { 'sidecarless.kubernetes.resource': resource });
  }
}
