import type { GrpcMeshCore } from './grpc/mesh-core.js';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, Server as HttpServer, ServerOptions as HttpServerOptions, ServerResponse } from 'node:http';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, ServerOptions as Http2ServerOptions } from 'node:http2';
import type { TlsOptions } from 'node:tls';
import type { Dispatcher } from 'undici';
import { FormData as UndiciFormData, Request as UndiciRequest, fetch as undiciFetch, request as undiciRequest } from 'undici';
import type { Clock, MeshClock, RandomSource } from './clock.js';
import { meshClock, systemRandom } from './clock.js';
import { ClusterManager } from './cluster/cluster-manager.js';
import { parseLocality } from './discovery/endpoint.js';
import type { OutboundTrafficPolicy } from './http/mesh-dispatcher.js';
import { MeshDispatcher } from './http/mesh-dispatcher.js';
import { Destinations } from './outbound/destinations.js';
import { grpcOutboundStack } from './outbound/stack.js';
import { RATE_LIMITED_AS_ERROR } from './outbound/rate-limit-reply.js';
import type { RateLimitStoreError } from './resilience/errors.js';
import type { RateLimitOptions } from './resilience/rate-limit/rate-limiting.js';
import { RateLimiting } from './resilience/rate-limit/rate-limiting.js';
import type { ConfigStore, StagedSnapshot } from './config/config-store.js';
import type { InlineConfig } from './config/config-object.js';
import type { Snapshot } from './config/snapshot.js';
import type { ConfigSource } from './config/sources/source.js';
import type { MeshConfigError } from './config/errors.js';
import { MeshClosedError } from './errors.js';
import type { DnsEndpointChange, DnsEndpointSource, DnsLookupFailure, MeshDnsOptions } from './discovery/dns/index.js';
import { createMeshDnsSource } from './discovery/dns/index.js';
import type { KubernetesDiscoveryNote, KubernetesEndpointSource } from './kubernetes/discovery/index.js';
import type { KubeWatcher } from './kubernetes/collection.js';
import { ClientCredentials } from './security/client-credentials.js';
import { runtimeCredentials } from './config/compile/security/destination-rule-tls.js';
import { resolveServiceHost } from './routing/resolve-host.js';
import type { BreakerEvent, BreakerState, EjectionEvent } from './resilience/events.js';
import type { BreakerOptions } from './resilience/service-breaker.js';
import { ServiceBreaker } from './resilience/service-breaker.js';
import type { KubeApiWatcher, KubeCollectionReport } from './kubernetes/api-watcher.js';
import type { KubernetesSource } from './kubernetes/kubernetes-source.js';
import type { DiscoveryMode, KubernetesOptions } from './kubernetes/kubernetes-options.js';
import { kubernetesOptionsFor } from './kubernetes/kubernetes-options.js';
import { loadKubeClient } from './kubernetes/load-client.js';
import type * as KubernetesCode from './kubernetes/mesh-kubernetes.js';
import type { KubernetesStatus } from './kubernetes/mesh-kubernetes.js';
import type { AdminServer, AdminServerOptions, MeshInspection, MeshLogger } from './inspect/index.js';
import type * as InspectCode from './inspect/index.js';
import type * as TelemetryCode from './telemetry/mesh-telemetry.js';
import type { MeshTelemetry } from './telemetry/mesh-telemetry.js';
import type { OtelApi } from './telemetry/otel-api.js';
import { loadOtelApi } from './telemetry/otel-api.js';
import type { TelemetryOptions } from './telemetry/telemetry-options.js';
import type { CertificateBundle } from './security/certificate-bundle.js';
import type { CertificateOptions } from './security/certificate-layouts.js';
import type { CertificateError, ClientCredentialRejection, PeerRejectedError } from './security/errors.js';
import { MeshSecurity } from './security/mesh-security.js';
import type { WorkloadCertificates } from './security/workload-certificates.js';
import type { InboundPolicy } from './security/inbound/inbound-policy.js';
import type { InboundHttp2Options, InboundServerOptions } from './server/secure-server.js';
import { createInboundHttp2Server, createInboundServer, secureServer } from './server/secure-server.js';
import type { TlsTerminatingServer } from './server/secure-tls-server.js';
import { inboundTlsOptions } from './server/secure-tls-server.js';
import type { AccessDeniedError, JwtAuthenticationError } from './security/authz/errors.js';
import { inboundMeshConfig } from './server/inbound/inbound-setup.js';
import type { InboundAuditEvent } from './security/inbound/inbound-reporter.js';
import type { InboundEntry } from './server/inbound/inbound-api.js';
import type { InboundOptions, MeshConfigOptions } from './server/inbound/inbound-options.js';
import type * as InboundCode from './server/inbound/mesh-inbound.js';
import type { MeshInbound } from './server/inbound/mesh-inbound.js';

/** What `createMesh` started and loaded for a mesh (the code behind dynamic imports included). */
interface MeshParts {
  readonly kube?: KubeApiWatcher | undefined;
  readonly kubeSource?: KubernetesSource | undefined;
  readonly otel?: LoadedTelemetry | undefined;
  readonly kubeOptions?: KubernetesOptions | undefined;
  readonly security?: MeshSecurity | undefined;
  readonly kubeCode?: typeof KubernetesCode | undefined;
  readonly inboundCode: typeof InboundCode;
  readonly inspectCode: typeof InspectCode;
}

/** `@opentelemetry/api` and the mesh's telemetry code, loaded only when telemetry is on. */
interface LoadedTelemetry {
  readonly api: OtelApi;
  readonly code: typeof TelemetryCode;
}

/** Options of {@link createMesh}. Every default is stated next to the Istio default it mirrors. */
export interface MeshOptions {
  /**
   * The caller's namespace: short host names resolve relative to it, and it decides which
   * resources are visible (`exportTo`). Default: `$POD_NAMESPACE`, else the service account's
   * namespace file in a pod, else `default`.
   */
  readonly namespace?: string;
  /**
   * Configuration: file and directory paths (YAML or JSON, multi-document, `kind: List`) and
   * inline resource objects, in any mix. Objects are typed from the CRD schemas (`ConfigObject`:
   * a VirtualService, DestinationRule...), and validated at run time like files.
   */
  readonly config?: readonly (string | InlineConfig)[];
  /** The caller's own workload labels (for `sourceLabels` and `workloadSelector`). Default `{}`. */
  readonly labels?: Readonly<Record<string, string>>;
  /** Istio's config root namespace for mesh-wide resources. Default `istio-system`, as Istio. */
  readonly rootNamespace?: string;
  /** Kubernetes cluster domain. Default `cluster.local`. */
  readonly clusterDomain?: string;
  /** Watch files and directories and apply changes within a second. Default `true`. */
  readonly watch?: boolean;
  /**
   * More configuration sources (your own control plane, a database...): each delivers its full
   * content as raw documents, validated and compiled like files. See {@link ConfigSource}.
   */
  readonly sources?: readonly ConfigSource[];
  /**
   * Hosts that no configuration covers: `ALLOW_ANY` sends them unchanged (Istio's default),
   * `REGISTRY_ONLY` fails them with `UnknownHostError`. Default: the applicable Sidecar's
   * `outboundTrafficPolicy.mode`, else `ALLOW_ANY`.
   */
  readonly outboundTrafficPolicy?: OutboundTrafficPolicy;
  /**
   * How many bytes of a streamed request body are kept so that a retry can send it again
   * (Envoy's per-request buffer limit). A body that grows past it is not retried. Default 1 MiB.
   * Bodies given as a string or bytes are always retriable.
   */
  readonly retryBufferBytes?: number;
  /**
   * How long `close()` lets requests in flight finish, in milliseconds, before it aborts them
   * with `MeshClosedError`. Meanwhile no retry, hedge, back-off or fault delay starts, and new
   * requests fail with `MeshClosedError`. Default 5000, Istio's `terminationDrainDuration` (5 s).
   */
  readonly drainTimeoutMs?: number;
  /** The caller's locality, `region/zone/subzone`, for locality-aware balancing. Default unknown. */
  readonly locality?: string;
  /**
   * Time for everything the mesh times: request timers (timeouts, back-offs, fault delays, hedges)
   * and background ones (outlier checks, breaker windows, DNS refreshes, Kubernetes re-watches,
   * file and certificate polls). Tests give a clock they move by hand; see {@link Clock} and
   * docs/testing.md. Default: the system clock (`performance.now`, `Date.now`, `setTimeout`).
   */
  readonly clock?: Clock;
  /** Randomness in [0, 1) for weights, faults and balancers. Default: `Math.random`. */
  readonly random?: RandomSource;
  /**
   * DNS discovery (see {@link MeshDnsOptions}); `false` turns it off: `resolution: DNS` endpoints
   * are then connected to by name and Kubernetes names pass through to the system resolver.
   * Default `{}`: on, configured from resolv.conf.
   */
  readonly dns?: MeshDnsOptions | false;
  /**
   * @internal Endpoints of Kubernetes services from the API through this watcher (EndpointSlices,
   * Services, Pod labels, Nodes), chosen before DNS. The mesh does not close the watcher.
   */
  readonly kubeWatcher?: KubeWatcher;
  /**
   * Service-level circuit breakers, keyed by service host (`reviews`, `reviews.shop` or the full
   * name, resolved like a request's host). An addition to Istio; see {@link BreakerOptions}.
   * `mesh.breaker()` adds, replaces or removes one later.
   */
  readonly breakers?: Readonly<Record<string, BreakerOptions>>;
  /**
   * Client-side rate limiting (RateLimitPolicy, EnvoyFilter local rate limits): Redis for limits
   * with `scope: SHARED`. See {@link RateLimitOptions}. Default: no Redis.
   */
  readonly rateLimit?: RateLimitOptions;
  /**
   * Where services and Istio resources come from besides `config`: `'embedded'` (files,
   * ServiceEntry, DNS), `'kubernetes'` (the API too, see {@link KubernetesOptions}; needs the
   * optional peer `@kubernetes/client-node`), or `'auto'`: the API when running in a pod, else
   * embedded. Default `'embedded'`.
   */
  readonly discovery?: DiscoveryMode | KubernetesOptions;
  /**
   * Structured events (config accepted and rejected, ejections, breaker changes, DNS, rate-limit
   * store) go here: any object with pino's `debug/info/warn/error(obj, msg)`, so a pino logger
   * works as is; `consoleLogger()` adapts console. Default: silent. See docs/inspect.md.
   */
  readonly logger?: MeshLogger;
  /**
   * OpenTelemetry traces and metrics through the providers the application registered (see
   * {@link TelemetryOptions} and docs/telemetry.md); `false` turns them off. Default `{}`: on when
   * `@opentelemetry/api` is installed, costing next to nothing until an SDK is registered.
   */
  readonly telemetry?: TelemetryOptions | false;
  /**
   * The workload's certificates for mesh mTLS (see {@link CertificateOptions} and docs/mtls.md):
   * an Istio, Kubernetes TLS Secret, cert-manager csi-driver or SPIFFE directory, watched and
   * rotated. Configured certificates that fail their checks make `createMesh` reject. Default:
   * the directory in `$OUTPUT_CERTS`, else the first of the well-known directories (`/etc/certs`,
   * `/var/lib/istio/data`, `/etc/istio-output-certs`, `/var/run/secrets/workload-spiffe-credentials`)
   * that holds certificates, else none. `false`: none.
   */
  readonly certificates?: CertificateOptions | false;
  /** The mesh's trust domain: peers' SPIFFE IDs must belong to it (or an alias). Default `cluster.local`, as Istio. */
  readonly trustDomain?: string;
  /** More trust domains peers may come from (Istio's `trustDomainAliases`). Default none. */
  readonly trustDomainAliases?: readonly string[];
  /**
   * Istio's auto mTLS (`meshConfig.enableAutoMtls`): where no DestinationRule `tls` applies,
   * calls to a service of the mesh (a Kubernetes service, a `MESH_INTERNAL` ServiceEntry) use
   * mutual TLS with the workload's certificates to the endpoints labelled
   * `security.istio.io/tlsMode: istio` (and WorkloadEntries with a `serviceAccount`), and
   * plaintext to the others, unless the service's namespace PeerAuthentication is `DISABLE`.
   * Needs workload certificates (`certificates`); without them it is off. Default `true`, as Istio.
   * See docs/mtls.md.
   */
  readonly autoMtls?: boolean;
  /**
   * Settings of Istio's MeshConfig the inbound side reads: `pathNormalization` and
   * `extensionProviders` (CUSTOM authorization). See {@link MeshConfigOptions} and docs/authorization.md.
   */
  readonly meshConfig?: MeshConfigOptions;
  /**
   * The inbound side (sidecarless/express, sidecarless/fastify, sidecarless/http): CUSTOM
   * authorizers, trusted proxies, a default deadline. See {@link InboundOptions} and docs/server.md.
   */
  readonly inbound?: InboundOptions;
}

export interface MeshEvents {
  /** A configuration change was accepted; its snapshot serves from now on. */
  snapshot: [snapshot: Snapshot];
  /** A configuration change was rejected whole; the previous snapshot keeps serving. */
  configRejected: [error: MeshConfigError];
  /**
   * A DNS lookup for a name the mesh resolves failed (timeout, server failure, refused); it is
   * retried with backoff, and the name's last good endpoints (`failure.kept`) keep serving.
   */
  dnsError: [failure: DnsLookupFailure];
  /** The endpoints behind a name the mesh resolves changed; the clusters using it already serve them. */
  dnsChange: [change: DnsEndpointChange];
  /** Outlier detection ejected a host from its cluster, or returned it. */
  ejection: [event: EjectionEvent];
  /** A service breaker opened, half-opened or closed. */
  breaker: [event: BreakerEvent];
  /**
   * A SHARED rate limit cannot use Redis (none configured, or Redis stopped answering): it is
   * enforced per process meanwhile. Emitted again, without `cause`, when Redis answers again.
   */
  rateLimitError: [error: RateLimitStoreError];
  /**
   * A Kubernetes watch changed health: synced, failed (`status.error`: unreachable, 401, 403...;
   * its last known objects keep serving), recovered, restarted.
   */
  kubernetesStatus: [report: KubeCollectionReport];
  /**
   * Endpoint discovery cannot see something and works around it (Nodes forbidden: locality from
   * EndpointSlice zones; a collection failing: last known endpoints serve). Once per cause.
   */
  kubernetesNote: [note: KubernetesDiscoveryNote];
  /**
   * Workload certificates passed every check and are used for new connections from now on: the
   * first set (`previous` undefined) and every rotation.
   */
  certificateRotated: [bundle: CertificateBundle, previous: CertificateBundle | undefined];
  /** A new certificate set was refused (the error names the file and the problem); the set in use stays. */
  certificateRejected: [error: CertificateError];
  /** The certificate in use has less than a fifth of its lifetime left (and again once expired). */
  certificateExpiring: [bundle: CertificateBundle, secondsLeft: number];
  /**
   * A DestinationRule's client credentials (its `credentialName` Secret, or the certificate files
   * its `tls` names) were refused: a key that does not match, an expired certificate, a Secret
   * missing or forbidden. `kept`: the last good set keeps serving; otherwise requests fail closed.
   */
  credentialRejected: [rejection: ClientCredentialRejection];
  /** An inbound connection was refused by PeerAuthentication (plaintext to STRICT, a bad client certificate...). */
  inboundRejected: [error: PeerRejectedError];
  /** An inbound request was refused: by an AuthorizationPolicy (403) or RequestAuthentication (401). */
  inboundDenied: [error: AccessDeniedError | JwtAuthenticationError];
  /** An AUDIT AuthorizationPolicy matched an inbound request, or a dry-run policy was evaluated. */
  inboundAudit: [event: InboundAuditEvent];
}

/** A running mesh. Create it with {@link createMesh}; release it with {@link Mesh.close}. */
export class Mesh extends EventEmitter<MeshEvents> {
  /**
   * An undici Dispatcher routing through the mesh: `fetch(url, { dispatcher })`,
   * `undici.request(url, { dispatcher })`, or `setGlobalDispatcher(mesh.dispatcher)`.
   */
  readonly dispatcher: Dispatcher;
  /** `mesh.request`'s options when the caller gives none. */
  private requestDefaults: object | undefined;
  private readonly clusters: ClusterManager;
  private readonly dns: DnsEndpointSource | undefined;
  private readonly kubeEndpoints: KubernetesEndpointSource | undefined;
  private readonly breakers = new Map<string, ServiceBreaker>();
  private readonly rateLimits: RateLimiting;
  private readonly clock: MeshClock;
  private readonly random: RandomSource;
  private grpcCoreValue: GrpcMeshCore | undefined;
  /** Where calls go (service hosts, clusters), remembered per snapshot: HTTP's and gRPC's. */
  private readonly destinations: Destinations;
  private readonly admins = new Set<AdminServer>();
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Told when close() starts (gRPC health turns NOT_SERVING before the drain). */
  private readonly closingListeners = new Set<() => void>();
  private readonly telemetry: MeshTelemetry | undefined;
  private inboundPolicyValue: InboundPolicy | undefined;
  private readonly security: MeshSecurity;
  private readonly inboundSide: MeshInbound;
  private readonly kube: KubeApiWatcher | undefined;
  private readonly kubeSource: KubernetesSource | undefined;
  private readonly kubeCode: typeof KubernetesCode | undefined;
  private readonly inspectCode: typeof InspectCode;
  /** DestinationRule client credentials (credentialName Secrets, tls files), kept current. */
  private readonly credentials: ClientCredentials;

  /** @internal Use {@link createMesh}. */
  static create(store: ConfigStore, options: MeshOptions, parts: MeshParts): Mesh {
    return new Mesh(store, options, parts);
  }

  // Private: its parameters are the mesh's internals (and would pull optional peers' types into
  // the published declarations).
  private constructor(
    private readonly store: ConfigStore,
    options: MeshOptions,
    parts: MeshParts,
  ) {
    super();
    const { kube, kubeCode, otel, kubeOptions = {}, security, inboundCode } = parts;
    this.kube = parts.kube;
    this.kubeSource = parts.kubeSource;
    this.kubeCode = parts.kubeCode;
    this.inspectCode = parts.inspectCode;
    const clock = meshClock(options.clock);
    this.clock = clock;
    this.security = security ?? MeshSecurity.withoutCertificates({ ...options, clock });
    const random = options.random ?? systemRandom;
    this.random = random;
    const first = store.snapshot;
    this.dns =
      options.dns === false ? undefined : createMeshDnsSource(options.dns ?? {}, first?.namespace ?? 'default', first?.clusterDomain ?? 'cluster.local', clock);
    // Endpoints from the API share its watcher; `kubeWatcher` (internal) stands in for it in tests.
    const endpointWatcher = options.kubeWatcher ?? (kubeOptions.endpoints !== false ? kube : undefined);
    this.kubeEndpoints =
      endpointWatcher &&
      kubeCode &&
      new kubeCode.KubernetesEndpointSource(endpointWatcher, {
        namespace: first?.namespace ?? 'default',
        clusterDomain: first?.clusterDomain ?? 'cluster.local',
        fallbackRegion: parseLocality(options.locality).region,
        ...(kubeOptions.warmupTimeoutMs !== undefined ? { warmupTimeoutMs: kubeOptions.warmupTimeoutMs } : {}),
        clock,
      });
    this.kubeEndpoints?.on('note', (note) => this.emit('kubernetesNote', note));
    this.credentials = new ClientCredentials({ watcher: options.kubeWatcher ?? kube, clock });
    this.clusters = new ClusterManager({
      credentials: this.credentials,
      clock,
      random,
      caller: { locality: parseLocality(options.locality), labels: options.labels ?? {} },
      ...(this.dns ? { dns: this.dns } : {}),
      ...(this.kubeEndpoints ? { kube: this.kubeEndpoints } : {}),
      onEjection: (event) => {
        if (event.action === 'eject') this.telemetry?.ejected(`${event.host}|${event.subset ?? ''}|${event.port}`, event.reason ?? '');
        this.emit('ejection', event);
      },
      security: { certificates: this.security.certificates, trustDomains: this.security.trustDomains, autoMtls: options.autoMtls ?? true },
    });
    const clusters = this.clusters;
    this.telemetry =
      otel && options.telemetry !== false
        ? new otel.code.MeshTelemetry(otel.api, options.telemetry ?? {}, {
            namespace: first?.namespace ?? 'default',
            labels: options.labels ?? {},
            health: () => clusters.health(),
            serviceNamespace: (host) => this.store.snapshot?.service(host)?.namespace,
            clock,
            certificate: () => {
              const c = this.security.certificates;
              const bundle = c?.current;
              return bundle && { source: bundle.source, identity: bundle.identity?.uri ?? '', secondsLeft: c.secondsToExpiry() ?? 0 };
            },
          })
        : undefined;
    // After the cluster manager's own listener: by the time a `dnsChange` listener runs, the
    // clusters already serve the new endpoints.
    this.dns?.on('change', (change) => this.emit('dnsChange', change));
    this.dns?.on('lookupFailed', (failure) => this.emit('dnsError', failure));
    if (first) this.clusters.setSnapshot(first);
    // The first snapshot's credentials too: once it is replaced, its requests must not reopen what it named.
    if (first) this.credentials.retain(runtimeCredentials(first.resources, (block) => first.upstreamTls(block)));
    this.telemetry?.recheck();
    if (first) this.telemetry?.snapshot('accepted');
    const restarts = new Map<string, number>();
    kube?.onStatus((report) => {
      const before = restarts.get(report.description) ?? 0;
      restarts.set(report.description, report.status.restarts);
      if (report.status.restarts > before) this.telemetry?.watchRestarted(report.description);
      this.emit('kubernetesStatus', report);
    });
    for (const [host, breakerOptions] of Object.entries(options.breakers ?? {})) this.breaker(host, breakerOptions);
    this.rateLimits = new RateLimiting({
      clock,
      random,
      options: options.rateLimit ?? {},
      onError: (error) => {
        if (this.listenerCount('rateLimitError') > 0) this.emit('rateLimitError', error);
      },
    });
    this.destinations = new Destinations(() => this.snapshot, this.clusters, this.security.certificates);
    this.dispatcher = new MeshDispatcher({
      destinations: this.destinations,
      snapshot: () => this.snapshot,
      clusters: this.clusters,
      clock,
      random,
      outboundTrafficPolicy: options.outboundTrafficPolicy,
      ...(options.retryBufferBytes !== undefined ? { retryBufferBytes: options.retryBufferBytes } : {}),
      ...(options.drainTimeoutMs !== undefined ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
      rateLimits: this.rateLimits,
      telemetry: this.telemetry,
      certificates: this.security.certificates,
    });
    this.inboundSide = new inboundCode.MeshInbound({
      config: inboundMeshConfig(options),
      snapshot: () => this.store.snapshot,
      telemetry: this.telemetry,
      rateLimits: this.rateLimits,
      clock,
      principal: () => this.security.certificates?.current?.identity?.uri,
      sendCheck: async (url, method, headers, timeoutMs) => {
        const res = await this.request(url, { method: method as 'GET', headers, signal: AbortSignal.timeout(timeoutMs) });
        return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
      },
      denied: (error) => {
        if (this.listenerCount('inboundDenied') > 0) this.emit('inboundDenied', error);
      },
      audit: (event) => {
        if (this.listenerCount('inboundAudit') > 0) this.emit('inboundAudit', event);
      },
    });
    // A change becomes current only once everything served from it is built (docs/configuration.md).
    store.stageWith((candidate) => this.stage(candidate));
    store.on('snapshot', (s) => {
      // The Secrets and files the new snapshot no longer names stop being watched now.
      this.credentials.retain(runtimeCredentials(s.resources, (block) => s.upstreamTls(block)));
      this.telemetry?.recheck();
      this.telemetry?.snapshot('accepted');
      this.emit('snapshot', s);
    });
    // An unhandled 'error'-like event must never crash the process: rejections are only emitted
    // to listeners that asked for them.
    store.on('rejected', (e) => {
      this.telemetry?.snapshot('rejected');
      if (this.listenerCount('configRejected') > 0) this.emit('configRejected', e);
    });
    const certificates = this.security.certificates;
    // The first set was read before the mesh existed: count it once.
    if (certificates?.current) this.telemetry?.certificateRead('accepted', '');
    if (certificates?.lastError) this.telemetry?.certificateRead('rejected', certificates.lastError.problem);
    certificates?.on('rotated', (bundle, previous) => {
      this.telemetry?.certificateRead('accepted', '');
      this.emit('certificateRotated', bundle, previous);
    });
    certificates?.on('rejected', (error) => {
      this.telemetry?.certificateRead('rejected', error.problem);
      if (this.listenerCount('certificateRejected') > 0) this.emit('certificateRejected', error);
    });
    certificates?.on('expiring', (bundle, secondsLeft) => this.emit('certificateExpiring', bundle, secondsLeft));
    this.credentials.on('accepted', (source) => this.telemetry?.credentialRead(source, 'accepted', ''));
    this.credentials.on('rejected', (rejection) => {
      this.telemetry?.credentialRead(rejection.source, 'rejected', rejection.error.problem);
      if (this.listenerCount('credentialRejected') > 0) this.emit('credentialRejected', rejection);
    });
    if (options.logger)
      this.inspectCode.logMeshEvents(
        this,
        options.logger,
        store.sourceStatus().map((s) => s.id),
        first,
        certificates,
      );
  }

  /**
   * Builds what a candidate snapshot serves (the clusters made so far, the inbound layers) and
   * returns what applies it; throws, and so rejects the candidate, when something cannot be built.
   */
  private stage(candidate: Snapshot): StagedSnapshot {
    const clusters = this.clusters.prepare(candidate);
    this.inboundSide.stage(candidate);
    return { commit: clusters };
  }

  /** The configuration snapshot in force. */
  get snapshot(): Snapshot {
    const s = this.store.snapshot;
    // Invariant: createMesh builds a Mesh only once a snapshot was accepted.
    if (!s) throw new Error('mesh is not started');
    return s;
  }

  /**
   * WHATWG fetch through the mesh (undici's fetch with {@link Mesh.dispatcher}), typed with the
   * global `RequestInit` and `Response`. The global `Request` and `FormData` (Node's own undici)
   * are carried over to undici's; the response is undici's `Response`, the same API (so
   * `instanceof globalThis.Response` is false).
   */
  fetch(input: string | URL | globalThis.Request, init?: RequestInit): Promise<Response> {
    const options = init === undefined ? undefined : withUndiciBody(init);
    if (isForeignRequest(input)) {
      // Node's global Request comes from Node's bundled undici, which undici's own fetch does not
      // accept: carry its parts over.
      return undiciFetch(input.url, {
        method: input.method,
        headers: [...input.headers],
        body: input.body as ReadableStream | null,
        signal: input.signal,
        redirect: input.redirect,
        ...(input.body ? { duplex: 'half' as const } : {}),
        ...options,
        dispatcher: this.dispatcher,
      } as UndiciRequestInit) as Promise<unknown> as Promise<Response>;
    }
    return undiciFetch(input as UndiciRequestInfo, { ...options, dispatcher: this.dispatcher } as UndiciRequestInit) as Promise<unknown> as Promise<Response>;
  }

  /**
   * The fast path: `undici.request` through the mesh. A request a rate limit refuses rejects
   * with `RateLimitedError` (through `fetch` or the dispatcher it is a 429 response instead).
   */
  request(
    url: Parameters<typeof undiciRequest>[0],
    options?: Omit<NonNullable<Parameters<typeof undiciRequest>[1]>, 'dispatcher'>,
  ): ReturnType<typeof undiciRequest> {
    // undici copies the options it is given: a call without options can share one object.
    const opts =
      options === undefined
        ? (this.requestDefaults ??= Object.freeze({ dispatcher: this.dispatcher, [RATE_LIMITED_AS_ERROR]: true }))
        : { ...options, dispatcher: this.dispatcher, [RATE_LIMITED_AS_ERROR]: true };
    return undiciRequest(url, opts as Parameters<typeof undiciRequest>[1]);
  }

  /**
   * Configures the circuit breaker of a service (`reviews`, `reviews.shop` or the full name,
   * resolved like a request's host), replacing any it had; `null` removes it. Returns the service's
   * breaker state, `undefined` when it has none.
   */
  breaker(host: string, options?: BreakerOptions | null): BreakerState | undefined {
    const fqdn = resolveServiceHost(host, this.snapshot);
    if (options !== undefined) {
      this.breakers.get(fqdn)?.shutdown();
      this.breakers.delete(fqdn);
      let created: ServiceBreaker | undefined;
      if (options !== null) {
        created = new ServiceBreaker(
          fqdn,
          options,
          (state) => {
            this.telemetry?.breakerChanged(fqdn, state);
            this.emit('breaker', { host: fqdn, state });
          },
          this.clock,
        );
        this.breakers.set(fqdn, created);
      }
      this.clusters.setBreaker(fqdn, created);
    }
    return this.breakers.get(fqdn)?.state;
  }

  /**
   * The workload certificates in use (`current`), their last error, expiry; undefined when the
   * mesh has none. New connections take `current` each time, so it is never cached.
   */
  get certificates(): WorkloadCertificates | undefined {
    return this.security.certificates;
  }

  /** The inbound policy servers apply: PeerAuthentication from the snapshot in force, the workload's certificates. */
  private inboundPolicy(): InboundPolicy {
    this.inboundPolicyValue ??= this.security.inboundPolicy(
      () => this.store.snapshot,
      (outcome) => {
        this.telemetry?.inboundConnection(outcome.mode, outcome.result, outcome.result === 'rejected' ? outcome.error.reason : '');
        if (outcome.result === 'rejected' && this.listenerCount('inboundRejected') > 0) this.emit('inboundRejected', outcome.error);
      },
    );
    return this.inboundPolicyValue;
  }

  /**
   * A node:http server with mesh mTLS in front: each connection gets its port's PeerAuthentication
   * mode (STRICT, PERMISSIVE with TLS and plaintext on one port, DISABLE), TLS with the workload's
   * certificates and verified client certificates; `peerIdentity(req)` gives the caller's identity.
   * An Express app is a handler; for Fastify, `serverFactory: (handler) => mesh.createServer(handler)`.
   * See docs/mtls.md.
   */
  createServer(
    handler?: RequestListener<typeof IncomingMessage, typeof ServerResponse>,
    options?: InboundServerOptions & { readonly http?: HttpServerOptions },
  ): HttpServer {
    return createInboundServer(this.inboundPolicy(), handler, options);
  }

  /** {@link Mesh.createServer} for HTTP/2 (h2 over mesh TLS, h2c in plaintext; `allowHTTP1` for HTTP/1.1 too). */
  createHttp2Server(
    handler?: (request: Http2ServerRequest, response: Http2ServerResponse) => void,
    options?: InboundHttp2Options & { readonly http2?: Http2ServerOptions },
  ): Http2Server {
    return createInboundHttp2Server(this.inboundPolicy(), handler, options);
  }

  /**
   * Puts mesh mTLS in front of a node:http or node:http2 server you created (see
   * {@link Mesh.createServer}). A server that terminates TLS itself (`https.createServer`,
   * `http2.createSecureServer`, Fastify's `https`), made with {@link Mesh.tlsOptions}, gets the
   * mesh's identity checks, refusal metrics and certificate rotation; it speaks TLS only.
   */
  secureServer<S extends HttpServer | Http2Server | TlsTerminatingServer>(server: S, options?: InboundHttp2Options): S {
    return secureServer(server, this.inboundPolicy(), options);
  }

  /**
   * TLS options for a server that terminates TLS itself: the workload's certificates in use, client
   * certificates required and verified against the mesh's roots. Pass the server to
   * {@link Mesh.secureServer} for the SPIFFE checks, `peerIdentity` and rotation.
   */
  tlsOptions(): TlsOptions {
    return inboundTlsOptions(this.inboundPolicy());
  }

  /**
   * The inbound path the server integrations (`sidecarless/express`, `sidecarless/fastify`,
   * `sidecarless/http`) run each request through: path normalization, RequestAuthentication,
   * AuthorizationPolicy, inbound rate limits, the server span and the request's deadline.
   */
  get inbound(): InboundEntry {
    return this.inboundSide.processor;
  }

  /** @internal The outbound core `sidecarless/grpc` routes and balances with (the HTTP path's own). */
  grpcCore(): GrpcMeshCore {
    this.grpcCoreValue ??= {
      snapshot: () => this.snapshot,
      clusters: this.clusters,
      destinations: this.destinations,
      clock: this.clock,
      random: this.random,
      rateLimits: this.rateLimits,
      isClosed: () => this.closed,
      certificates: () => this.security.certificates,
      trustDomains: this.security.trustDomains,
      telemetry: () => this.telemetry,
      composeStack: grpcOutboundStack,
      onClosing: (listener) => {
        this.closingListeners.add(listener);
        return () => this.closingListeners.delete(listener);
      },
    };
    return this.grpcCoreValue;
  }

  /**
   * `url` (a request target) with its path normalised as the inbound path normalises it
   * (`meshConfig.pathNormalization`); unchanged when it cannot be (the inbound path then answers 400).
   */
  inboundNormalize(url: string): string {
    return this.inboundSide.normalize(url);
  }

  /** The Kubernetes watches and their health; undefined when the mesh does not use the API. */
  kubernetesStatus(): KubernetesStatus | undefined {
    return this.kube && this.kubeCode ? this.kubeCode.kubernetesStatus(this.kube, this.kubeSource, this.kubeEndpoints?.notes()) : undefined;
  }

  /**
   * A JSON view of the mesh now: routes, clusters with their merged policy, endpoints with health
   * and in-flight requests, config sources with their last errors, DNS names, breakers, rate
   * limits. Costs a walk of the snapshot; nothing on the request path. See docs/inspect.md.
   */
  inspect(): MeshInspection {
    return this.inspectCode.inspectMesh({
      snapshot: this.snapshot,
      store: this.store,
      clusters: this.clusters,
      dns: this.dns,
      kube: this.kubeEndpoints,
      breakers: this.breakers,
      rateLimits: this.rateLimits,
      clockNow: this.clock.now(),
      wallNow: this.clock.wallNow(),
    });
  }

  /**
   * A node:http request handler serving read-only admin views (`/config_dump`, `/clusters`,
   * `/routes`, `/endpoints`, `/config`, `/stats`, `/ready`), for an application's own server.
   */
  adminHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return this.inspectCode.createAdminHandler({
      inspect: () => this.inspect(),
      ready: () => !this.closed,
    });
  }

  /**
   * Serves {@link Mesh.adminHandler} on its own server, bound to `127.0.0.1:15000` by default; a
   * non-loopback host is refused unless `allowRemote` is set. Closed with the mesh.
   */
  async serveAdmin(options: AdminServerOptions = {}): Promise<AdminServer> {
    if (this.closed) throw new MeshClosedError();
    // Loaded on first use: an application that never serves the admin views never loads node:http.
    const { startAdminServer } = await import('./inspect/admin-server.js');
    const server = await startAdminServer(this.adminHandler(), options);
    const admins = this.admins;
    admins.add(server);
    return {
      url: server.url,
      port: server.port,
      host: server.host,
      close: async () => {
        admins.delete(server);
        await server.close();
      },
    };
  }

  /**
   * Stops every watcher, timer and socket the mesh owns. New requests fail with `MeshClosedError`
   * at once; requests in flight get the drain period ({@link MeshOptions.drainTimeoutMs}) and are
   * then aborted with `MeshClosedError`. Resolves within the drain period plus the time to release
   * the rest; calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    for (const listener of this.closingListeners) listener();
    this.closingListeners.clear();
    // First, so that no request starts while the rest shuts down.
    const draining = this.dispatcher.close();
    await Promise.all([...this.admins].map((a) => a.close()));
    this.admins.clear();
    await this.store.close();
    this.kubeEndpoints?.close();
    await this.kube?.close();
    await draining;
    for (const breaker of this.breakers.values()) breaker.shutdown();
    this.breakers.clear();
    await this.rateLimits.close();
    this.dns?.close();
    this.security.close();
    this.credentials.close();
    this.telemetry?.close();
    this.removeAllListeners();
  }
}

type UndiciRequestInfo = Parameters<typeof undiciFetch>[0];
type UndiciRequestInit = NonNullable<Parameters<typeof undiciFetch>[1]>;

/**
 * undici's fetch sends a FormData of another undici (the global one) as the text
 * "[object FormData]": copy it into undici's own, which it encodes as multipart.
 */
function withUndiciBody(init: RequestInit): RequestInit | UndiciRequestInit {
  const body = init.body;
  if (typeof body !== 'object' || body === null || !(body instanceof globalThis.FormData) || body instanceof UndiciFormData) return init;
  const form = new UndiciFormData();
  for (const [name, value] of body) form.append(name, value);
  return { ...init, body: form } as UndiciRequestInit;
}

function isForeignRequest(input: unknown): input is globalThis.Request {
  return (
    typeof input === 'object' &&
    input !== null &&
    !(input instanceof UndiciRequest) &&
    typeof (input as globalThis.Request).url === 'string' &&
    typeof (input as globalThis.Request).method === 'string' &&
    (input as globalThis.Request).headers !== undefined
  );
}

function defaultNamespace(): string {
  if (process.env.POD_NAMESPACE) return process.env.POD_NAMESPACE;
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}

/** `createMesh` (src/create-mesh.ts) once this module has loaded. */
export async function startMesh(options: MeshOptions = {}): Promise<Mesh> {
  // Checked before anything is started: a bad inbound option leaves nothing to release.
  const inbound = inboundMeshConfig(options);
  // Code that importing the package does not load is loaded here, all at once: the Kubernetes
  // client first (its import is most of the time before the first API request), then the
  // configuration pipeline and sources, the mesh's own Kubernetes code, the inbound side, the
  // inspection views and the optional telemetry API.
  const kubeOptions = kubernetesOptionsFor(options.discovery);
  if (kubeOptions) loadKubeClient().catch(ignore);
  const configCode = import('./config/config-store.js');
  const inboundCode = import('./server/inbound/mesh-inbound.js');
  const inspectCode = import('./inspect/index.js');
  const sourcesCode = import('./config/sources/index.js');
  const kubeCode = kubeOptions || options.kubeWatcher ? import('./kubernetes/mesh-kubernetes.js') : undefined;
  const telemetry = options.telemetry === false ? undefined : loadTelemetry();
  // Settled below; a failure before that must not surface as an unhandled rejection.
  configCode.catch(ignore);
  inboundCode.catch(ignore);
  inspectCode.catch(ignore);
  sourcesCode.catch(ignore);
  kubeCode?.catch(ignore);
  telemetry?.catch(ignore);

  const paths = (options.config ?? []).filter((c): c is string => typeof c === 'string');
  const objects = (options.config ?? []).filter((c): c is InlineConfig => typeof c !== 'string');
  const clock = meshClock(options.clock);
  const sources: ConfigSource[] = [];
  const { FileSource, InlineSource } = await sourcesCode;
  if (paths.length > 0) sources.push(new FileSource(paths, { watch: options.watch ?? true, clock }));
  if (objects.length > 0) sources.push(new InlineSource(objects));
  sources.push(...(options.sources ?? []));
  // Last: local files and inline objects take precedence over the cluster's (docs/kubernetes.md).
  const kubernetes = await kubeCode;
  const kube =
    kubeOptions && kubernetes
      ? await kubernetes.openKubernetes(kubeOptions, options.namespace ?? process.env.POD_NAMESPACE, options.rootNamespace ?? 'istio-system', {
          clock,
          ...(options.random ? { random: options.random } : {}),
        })
      : undefined;
  if (kube?.source) sources.push(kube.source);
  const { ConfigStore } = await configCode;
  const store = new ConfigStore(
    sources,
    {
      namespace: options.namespace ?? kube?.namespace ?? defaultNamespace(),
      rootNamespace: options.rootNamespace ?? 'istio-system',
      clusterDomain: options.clusterDomain ?? 'cluster.local',
      workloadLabels: options.labels ?? {},
      trustDomains: [options.trustDomain ?? 'cluster.local', ...(options.trustDomainAliases ?? [])],
      authzProviders: inbound.providerNames,
    },
    { clock },
  );
  try {
    await store.start();
  } catch (error) {
    await store.close();
    await kube?.watcher.close();
    throw error;
  }
  let security: MeshSecurity | undefined;
  try {
    security = await MeshSecurity.start(
      { certificates: options.certificates, trustDomain: options.trustDomain, trustDomainAliases: options.trustDomainAliases, clock },
      { watcher: kube?.watcher, namespace: store.snapshot?.namespace ?? 'default' },
    );
    return Mesh.create(store, options, {
      kube: kube?.watcher,
      kubeSource: kube?.source,
      otel: await telemetry,
      kubeOptions,
      security,
      kubeCode: kubernetes,
      inboundCode: await inboundCode,
      inspectCode: await inspectCode,
    });
  } catch (error) {
    // An invalid option (a DNS server address Node cannot parse, bad certificates): release the sources.
    security?.close();
    await store.close();
    await kube?.watcher.close();
    throw error;
  }
}

const ignore = (): void => undefined;

/** The telemetry API when the application has it (an optional peer), with the code that uses it. */
async function loadTelemetry(): Promise<LoadedTelemetry | undefined> {
  const api = await loadOtelApi();
  return api && { api, code: await import('./telemetry/mesh-telemetry.js') };
}
