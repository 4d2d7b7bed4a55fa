import { isIP } from 'node:net';
import { Agent, Dispatcher } from 'undici';
import { hashKey } from '../balancer/index.js';
import type { MeshClock, RandomSource } from '../clock.js';
import type { Snapshot } from '../config/snapshot.js';
import type { HashOn } from '../config/compile/load-balancing.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import { QueryCache } from '../match/http-match.js';
import { resolveServiceHost } from '../routing/resolve-host.js';
import type { DestinationActions, FaultActions, RouteActions } from '../routing/route-actions.js';
import { applyHeaderOps, routeActions } from '../routing/route-actions.js';
import type { RouteRequest } from '../match/route-request.js';
import type { RateLimiting } from '../resilience/rate-limit/rate-limiting.js';
import type { CompiledDestination, CompiledHttpRoute } from '../routing/route-table.js';
import { matchRoute, pickDestination } from '../routing/route-table.js';
import { TLS_PORT_ACTIONS, tlsPortDestination } from './tls-port.js';
import { cookieHash } from './cookie-hash.js';
import { isImportedKubernetesService, isKubernetesServiceHost } from '../cluster/endpoint-plan.js';
import { UnknownHostError } from './errors.js';
import { NoTlsRouteError } from '../routing/errors.js';
import { TlsCredentialUnavailableError, TlsNotSupportedError } from '../security/errors.js';
import { tlsConnector } from '../transport/tls-connect.js';
import { TlsAgents } from '../transport/tls-agents.js';
import { URL_TLS } from '../security/tls-settings.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';
import { settleRateLimit } from './rate-limit-reply.js';
import { MeshClosedError } from '../errors.js';
import { invalidRequest } from './caller-errors.js';
import { InFlight } from './in-flight.js';
import { PassthroughRequest } from './passthrough-request.js';
import { WaitingRequest } from './waiting-request.js';
import { isLegacyHandler, LegacyHandlerAdapter } from './legacy-handler.js';
import { sendLocalError, sendLocalReply } from './local-reply.js';
import { Mirror } from './mirror.js';
import { RequestHeaders } from './request-headers.js';
import { answerBreakerOpen } from './resilience-replies.js';
import { BreakerOpenError } from '../resilience/errors.js';
import { ReplayableBody, DEFAULT_RETRY_BUFFER_BYTES } from '../transport/replayable-body.js';
import { UpstreamRequest } from './upstream-request.js';
import type { Cluster, ResolvedTls } from '../cluster/cluster.js';
import { tlsFailure } from '../cluster/cluster.js';
import { remainingTimeMs } from '../resilience/deadline.js';
import { isIdempotent } from '../resilience/hedge-policy.js';
import { RetryOn } from '../resilience/retry-on.js';
import { DEFAULT_RETRY_POLICY } from '../resilience/retry-policy.js';
import type { MeshTelemetry } from '../telemetry/mesh-telemetry.js';
import type { RequestTelemetry } from '../telemetry/request-telemetry.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';

/**
 * Envoy's per-request timeout header: a caller's value in milliseconds replaces the route's
 * timeout (0: none), and the header is not forwarded. The Istio request-timeouts task documents it.
 */
const RQ_TIMEOUT_HEADER = 'x-envoy-upstream-rq-timeout-ms';

/** Envoy reads the header as an unsigned integer and ignores anything else. */
function parseTimeoutHeader(value: string): number | undefined {
  return /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}

export type OutboundTrafficPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface MeshDispatcherOptions {
  readonly snapshot: () => Snapshot;
  readonly clusters: ClusterManager;
  readonly clock: MeshClock;
  readonly random: RandomSource;
  /** Hosts no configuration covers: pass through or fail; unset: the Sidecar's, else ALLOW_ANY. */
  readonly outboundTrafficPolicy: OutboundTrafficPolicy | undefined;
  /** How much of a streamed request body is kept so a retry can send it again (default 1 MiB). */
  readonly retryBufferBytes?: number;
  /** Client-side rate limits, decided once per request before it is sent. */
  readonly rateLimits?: RateLimiting;
  /** OpenTelemetry spans and metrics; undefined when `@opentelemetry/api` is absent or telemetry is off. */
  readonly telemetry?: MeshTelemetry | undefined;
  /** How long close() lets requests in flight finish before aborting them (default 5000 ms). */
  readonly drainTimeoutMs?: number;
  /** The workload's certificates, for ISTIO_MUTUAL to pass-through destinations. */
  readonly certificates?: WorkloadCertificates | undefined;
}

/** Istio's terminationDrainDuration: requests in flight get 5 s once the mesh closes. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

interface Origin {
  readonly scheme: string;
  readonly hostname: string;
  readonly port: number;
  /** host[:port] as written, what the backend sees as Host. */
  readonly authority: string;
  /**
   * TLS server name for the host (undefined for an IP literal), given to undici once here so it
   * does not derive it from the Host header on every request.
   */
  readonly servername: string | undefined;
}

/** Per-snapshot memo of host name resolution: the same names are asked for again and again. */
interface SnapshotState {
  readonly snapshot: Snapshot;
  readonly hosts: Map<string, string>;
  /** Clusters of route destinations, with the port they were found for. */
  readonly clusters: Map<CompiledDestination, { readonly cluster: Cluster; readonly port: number }>;
  /** DestinationRule TLS of pass-through destinations, by host then port (null: none). */
  readonly passthroughTls: Map<string, Map<number, ResolvedTls | null>>;
  /** The cluster manager's `tlsVersion` the memo was filled under. */
  tlsVersion: number;
}

/** The request view route matching reads; one per request, headers and query parsed lazily. */
class MatchRequest implements RouteRequest {
  /** Its telemetry, when anything is recorded (kept here: `instanceof` on the handler costs more). */
  telemetry: RequestTelemetry | undefined = undefined;
  /** The caller's x-envoy-upstream-rq-timeout-ms, taken out of the forwarded headers. */
  rqTimeoutHeader: string | undefined = undefined;

  constructor(
    readonly method: string,
    readonly scheme: string,
    readonly authority: string,
    readonly port: number,
    readonly path: string,
    readonly query: string,
    private readonly headers: RequestHeaders,
  ) {}
  header(name: string): string | undefined {
    if (name === 'host' || name === ':authority') return this.headers.get('host') ?? this.authority;
    return this.headers.get(name);
  }
}

/**
 * An undici Dispatcher that does what a sidecar does with an outbound request: host → service,
 * VirtualService route, fault, rewrite, weighted destination, balancer pick, then the endpoint's
 * own connection pool. `fetch(url, { dispatcher })`, `undici.request` and
 * `setGlobalDispatcher` all arrive here.
 */
export class MeshDispatcher extends Dispatcher {
  private readonly origins = new Map<string, Origin>();
  private lastOriginKey: string | undefined;
  private lastOrigin: Origin | undefined;
  private state: SnapshotState | undefined;
  private passthroughAgent: Agent | undefined;
  private readonly tlsAgents: TlsAgents;
  private closed = false;
  /** close() or destroy() under way (or done). */
  private closing: Promise<void> | undefined;
  /** Requests in flight, for close() to drain. */
  private readonly live = new InFlight();
  private readonly mirror: Mirror;

  /** A Kubernetes Service port's protocol, for ports no ServiceEntry declares. */
  private readonly portProtocolOf = (host: string, port: number) => this.options.clusters.portProtocol(host, port);

  constructor(private readonly options: MeshDispatcherOptions) {
    super();
    this.tlsAgents = new TlsAgents(options.certificates);
    this.mirror = new Mirror({
      clusters: options.clusters,
      clock: options.clock,
      random: options.random,
      passthrough: () => this.passthrough(),
      passthroughTls: (host, port) => this.passthroughTls(host, port),
      tlsAgent: (tls) => this.tlsAgents.get(tls),
    });
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // Node's built-in fetch (undici 7) hands `fetch(url, { dispatcher })` a handler of the old shape.
    if (isLegacyHandler(handler)) handler = new LegacyHandlerAdapter(handler);
    try {
      if (this.closed) throw new MeshClosedError();
      return this.route(opts, handler);
    } catch (error) {
      sendLocalError(handler, error instanceof Error ? error : new Error(String(error)));
      return true;
    }
  }

  /**
   * New requests fail with MeshClosedError from now on; requests in flight start nothing new (no
   * retry, hedge, back-off or fault delay) and get the drain period to finish, after which they
   * are aborted with MeshClosedError. Resolves once they are done and every pool is released.
   */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.closed = true;
    this.closing ??= this.shutDown(this.options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    if (callback) void this.closing.then(callback);
    else return this.closing;
  }

  /** close() without the drain period: requests in flight fail with MeshClosedError at once. */
  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    this.closed = true;
    this.closing ??= this.shutDown(0);
    if (cb) void this.closing.then(cb);
    else return this.closing;
  }

  private async shutDown(drainMs: number): Promise<void> {
    const live = this.live;
    live.closing = true;
    for (const item of live.items()) item.stopRetrying();
    if (live.size > 0 && drainMs > 0) {
      await new Promise<void>((resolve) => {
        const cancel = this.options.clock.schedule(drainMs, resolve, 'request');
        live.whenEmpty(() => {
          cancel();
          resolve();
        });
      });
    }
    const error = new MeshClosedError(
      drainMs > 0
        ? `the mesh is closed: its drain period of ${drainMs} ms ended before the request completed`
        : 'the mesh is closed: it was destroyed while the request was in flight',
    );
    for (const item of live.items()) item.abortForClose(error);
    // Nothing of the callers' is left in flight: idle connections and stray mirror copies go now.
    await Promise.all([this.options.clusters.close(true), this.passthroughAgent?.destroy(error), this.tlsAgents.destroy()]);
  }

  private passthrough(): Agent {
    // undici's defaults (h2 offered by ALPN, 10 s connect timeout); a failed handshake of an
    // https:// URL becomes an UpstreamTlsError, as with the mesh's own pools.
    this.passthroughAgent ??= new Agent({ connect: tlsConnector(URL_TLS, { timeoutMs: 10_000, allowH2: true }) });
    return this.passthroughAgent;
  }

  private origin(raw: string | URL | undefined): Origin {
    const key = typeof raw === 'string' ? raw : raw ? raw.origin : '';
    // undici hands a new origin string per request (built by concatenation): comparing it with
    // the last one is cheaper than flattening and hashing it for the map.
    if (key === this.lastOriginKey) return this.lastOrigin!;
    let origin = this.origins.get(key);
    if (!origin) {
      let url: URL;
      try {
        url = new URL(key);
      } catch (error) {
        throw invalidRequest(new Error(`invalid origin ${JSON.stringify(key)}`, { cause: error }));
      }
      const scheme = url.protocol.slice(0, -1);
      const hostname = url.hostname;
      origin = {
        scheme,
        hostname,
        port: url.port ? Number(url.port) : scheme === 'https' ? 443 : 80,
        authority: url.host,
        servername: isIP(hostname.replace(/^\[|\]$/g, '')) ? undefined : hostname,
      };
      if (this.origins.size > 10_000) this.origins.clear();
      this.origins.set(key, origin);
    }
    this.lastOriginKey = key;
    this.lastOrigin = origin;
    return origin;
  }

  /**
   * The DestinationRule TLS of a destination without a cluster, found once per snapshot, host
   * and port (a plaintext pass-through then costs two map reads).
   */
  private passthroughTls(host: string, port: number): ResolvedTls | undefined {
    const memo = this.snapshotState().passthroughTls;
    let ports = memo.get(host);
    if (!ports) {
      if (memo.size > 10_000) memo.clear();
      memo.set(host, (ports = new Map()));
    }
    let tls = ports.get(port);
    if (tls === undefined) {
      tls = this.options.clusters.tlsFor(host, undefined, port) ?? null;
      ports.set(port, tls);
    }
    return tls ?? undefined;
  }

  private snapshotState(): SnapshotState {
    const snapshot = this.options.snapshot();
    const tlsVersion = this.options.clusters.tlsVersion;
    if (this.state?.snapshot !== snapshot) {
      // Agents made under the previous rules finish what they carry; the new rules get their own.
      if (this.state) this.tlsAgents.reset();
      this.state = { snapshot, hosts: new Map(), clusters: new Map(), passthroughTls: new Map(), tlsVersion };
    } else if (this.state.tlsVersion !== tlsVersion) {
      // New client credentials: pass-through TLS is resolved again, its agents drain.
      this.tlsAgents.reset();
      this.state.passthroughTls.clear();
      this.state.tlsVersion = tlsVersion;
    }
    return this.state;
  }

  private route(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = this.origin(opts.origin);
    const state = this.snapshotState();
    const snapshot = state.snapshot;
    let serviceHost = state.hosts.get(origin.hostname);
    if (serviceHost === undefined) {
      serviceHost = resolveServiceHost(origin.hostname, snapshot);
      state.hosts.set(origin.hostname, serviceHost);
    }
    // TLS and HTTPS ports are routed by SNI (`tls` routes), never by HTTP routes.
    const portRoute = snapshot.routeFor(serviceHost, origin.port, this.portProtocolOf);
    const table = portRoute.kind === 'http' ? portRoute.table : undefined;
    // A Kubernetes service named with its namespace is found by the mesh's own DNS discovery
    // (src/cluster/endpoint-plan.ts) even when no configuration mentions it.
    if (!table && !snapshot.service(serviceHost) && !this.options.clusters.discovers(serviceHost, origin.hostname)) {
      // At startup a bare name may be a Service the API has not listed yet: ask again once it has.
      const pending = this.options.clusters.discoveryPending(serviceHost, origin.hostname);
      if (pending) return this.resumeAfter(pending, handler, () => this.route(opts, handler));
      // No configuration covers the host: ALLOW_ANY sends it as is, REGISTRY_ONLY refuses it.
      const policy = this.options.outboundTrafficPolicy ?? snapshot.outboundTrafficPolicy ?? 'ALLOW_ANY';
      // Kubernetes services are in the registry, unless a Sidecar's egress hosts leave them out.
      if (policy === 'REGISTRY_ONLY' && !(isKubernetesServiceHost(serviceHost, snapshot.clusterDomain) && isImportedKubernetesService(snapshot, serviceHost))) {
        sendLocalError(handler, new UnknownHostError(serviceHost));
        return true;
      }
      // A DestinationRule's TLS still applies (a Kubernetes service left to the platform's DNS).
      const tls = this.passthroughTls(serviceHost, origin.port);
      if (tls === undefined || tls.kind === 'disable') return this.passthrough().dispatch(opts, new PassthroughRequest(handler, this.live));
      // Client credentials being read for the first time: wait for them, then look again.
      if (tls.kind === 'unavailable' && tls.pending) return this.resumeAfter(tls.pending, handler, () => this.route(opts, handler));
      const refusal =
        tlsFailure(tls) ??
        this.tlsAgents.refusal(tls as Exclude<ResolvedTls, { kind: 'unsupported' | 'unavailable' | 'disable' }>, `${serviceHost}:${origin.port}`);
      if (refusal) {
        sendLocalError(handler, refusal);
        return true;
      }
      return this.tlsAgents
        .get(tls as Exclude<ResolvedTls, { kind: 'unsupported' | 'unavailable' | 'disable' }>)
        .dispatch({ ...opts, origin: `https://${origin.hostname}:${origin.port}` }, new PassthroughRequest(handler, this.live));
    }

    const rawPath = opts.path;
    const q = rawPath.indexOf('?');
    const path = q < 0 ? rawPath : rawPath.slice(0, q);
    const query = q < 0 ? '' : rawPath.slice(q + 1);
    const headers = new RequestHeaders(opts.headers as ConstructorParameters<typeof RequestHeaders>[0]);
    const request = new MatchRequest(upperCaseMethod(opts.method), origin.scheme, origin.authority, origin.port, path, query, headers);
    const telemetry = this.options.telemetry?.begin(handler, opts.method, origin, serviceHost, rawPath);
    if (telemetry) {
      // Only Istio's request size needs it; reading a header parses them all.
      if (telemetry.mesh.istioRecording) telemetry.requestBytes = bodyBytes(opts.body, headers.get('content-length'));
      handler = telemetry;
      request.telemetry = telemetry;
    }
    if (portRoute.kind === 'tls') {
      const destination = tlsPortDestination(portRoute, origin.scheme, origin.hostname, this.options.random);
      if (destination instanceof Error) {
        // Envoy flags a connection no filter chain matches NR.
        telemetry?.answeredLocally('tls-route', destination instanceof NoTlsRouteError ? ResponseFlag.NR : 0);
        sendLocalError(handler, destination);
        return true;
      }
      return this.forward(opts, handler, origin, serviceHost, undefined, -1, TLS_PORT_ACTIONS, request, headers, { destination });
    }

    let route: CompiledHttpRoute | undefined;
    let matchIndex = -1;
    if (table) {
      const hit = matchRoute(table, request);
      if (!hit) {
        telemetry?.answeredLocally('route-not-found', ResponseFlag.NR);
        sendLocalReply(handler, 404, 'route not found', { [RESPONSE_FLAGS_HEADER]: 'NR' });
        return true;
      }
      route = hit.route;
      matchIndex = hit.matchIndex;
    }
    const actions = route ? routeActions(route) : undefined;
    if (actions?.directResponse) {
      telemetry?.answeredLocally('direct-response', 0);
      sendLocalReply(handler, actions.directResponse.status, actions.directResponse.body, routeReplyHeaders(actions, {}));
      return true;
    }
    if (actions?.redirect) {
      const location = actions.redirect.location(origin.scheme, request.authority, origin.port, path, query);
      telemetry?.answeredLocally('redirect', 0);
      sendLocalReply(handler, actions.redirect.status, '', routeReplyHeaders(actions, { location }));
      return true;
    }
    const fault = actions?.fault;
    if (fault) {
      // Envoy's fault filter: the delay is decided first; the abort after the delay has passed.
      if (fault.delayFraction > 0 && this.options.random() < fault.delayFraction) {
        telemetry?.delayed(fault.delayMs);
        const waiting = new WaitingRequest(this.live, handler, 'was waiting out a fault delay');
        waiting.cancelTimer = this.options.clock.schedule(
          fault.delayMs,
          () => {
            if (!waiting.proceed()) return;
            try {
              if (!this.abortFault(fault, handler, request, headers, true))
                this.forward(opts, handler, origin, serviceHost, route, matchIndex, actions, request, headers);
            } catch (error) {
              sendLocalError(handler, error instanceof Error ? error : new Error(String(error)));
            }
          },
          'request',
        );
        return true;
      }
      if (this.abortFault(fault, handler, request, headers, false)) return true;
    }
    return this.forward(opts, handler, origin, serviceHost, route, matchIndex, actions, request, headers);
  }

  /**
   * Goes on with a request once `wait` settles (a warming cluster, a namespace's first list), or
   * fails it if the mesh closed meanwhile or going on threw.
   */
  private resumeAfter(wait: Promise<unknown>, handler: Dispatcher.DispatchHandler, resume: () => void): true {
    const waiting = new WaitingRequest(this.live, handler, 'was waiting for its destination to be discovered');
    wait
      .then(() => {
        if (waiting.proceed()) resume();
      })
      .catch((error: unknown) => {
        if (waiting.proceed()) sendLocalError(handler, error instanceof Error ? error : new Error(String(error)));
      });
    return true;
  }

  /** Answers with the route's fault abort when this request draws it; true when it did. */
  private abortFault(fault: FaultActions, handler: Dispatcher.DispatchHandler, request: MatchRequest, headers: RequestHeaders, delayed: boolean): boolean {
    if (fault.abortFraction <= 0 || this.options.random() >= fault.abortFraction) return false;
    request.telemetry?.answeredLocally('fault-abort', ResponseFlag.FI);
    const flags = delayed ? 'DI,FI' : 'FI';
    if (fault.abortGrpcStatus !== undefined && isGrpcRequest(headers.get('content-type'))) {
      // Envoy's local reply to a gRPC request: trailers-only, HTTP 200, the status in headers.
      sendLocalReply(handler, 200, '', {
        'content-type': 'application/grpc',
        'grpc-status': String(fault.abortGrpcStatus),
        'grpc-message': 'fault filter abort',
        [RESPONSE_FLAGS_HEADER]: flags,
      });
    } else {
      sendLocalReply(handler, fault.abortStatus, 'fault filter abort', { [RESPONSE_FLAGS_HEADER]: flags });
    }
    return true;
  }

  private forward(
    opts: Dispatcher.DispatchOptions,
    handler: Dispatcher.DispatchHandler,
    origin: Origin,
    serviceHost: string,
    route: CompiledHttpRoute | undefined,
    matchIndex: number,
    actions: RouteActions | undefined,
    request: MatchRequest,
    headers: RequestHeaders,
    admitted?: { readonly destination: CompiledDestination | undefined },
  ): boolean {
    const destination = admitted ? admitted.destination : route ? pickDestination(route, this.options.random()) : undefined;
    if (route && !destination) {
      sendLocalReply(handler, 500, 'route has no destination');
      return true;
    }
    const host = destination?.host ?? serviceHost;
    const port = destination?.port ?? origin.port;
    const subset = destination?.subset;
    const telemetry = request.telemetry;
    if (!admitted && this.options.rateLimits) {
      const limited = this.options.rateLimits.check(
        this.options.snapshot().rateLimits,
        request,
        serviceHost,
        route ? (route.name ?? '') : 'default',
        host,
        subset,
        port,
      );
      if (limited)
        return settleRateLimit(
          limited,
          handler,
          opts,
          request,
          () => this.closed,
          () => this.forward(opts, handler, origin, serviceHost, route, matchIndex, actions, request, headers, { destination }),
        );
    }

    const cluster = destination ? this.clusterFor(destination, port) : this.options.clusters.get(host, subset, port);
    if (cluster?.warming) {
      // DNS discovery: the first requests to a new cluster wait for its first answer; once it has
      // settled `warming` is unset and no request waits again. `get` runs again afterwards, as the
      // cluster may have been replaced meanwhile.
      return this.resumeAfter(cluster.warming, handler, () =>
        this.forward(opts, handler, origin, serviceHost, route, matchIndex, actions, request, headers, { destination }),
      );
    }
    telemetry?.routed(route?.name, host, subset, cluster?.name);
    if (!cluster && subset !== undefined) {
      // Envoy's cluster_not_found: no cluster exists for the subset (a service kept without endpoints).
      telemetry?.answeredLocally('no-healthy-upstream', ResponseFlag.NC);
      sendLocalReply(handler, 503, 'no healthy upstream', { [RESPONSE_FLAGS_HEADER]: 'NC' });
      return true;
    }
    // The DestinationRule's TLS: the cluster's, or for a destination without one (pass-through) the rule's.
    const tls = cluster ? cluster.upstreamTls : this.passthroughTls(host, port);
    // Client credentials being read for the first time: wait for them, then look again.
    if (tls?.kind === 'unavailable' && tls.pending) {
      return this.resumeAfter(tls.pending, handler, () =>
        this.forward(opts, handler, origin, serviceHost, route, matchIndex, actions, request, headers, { destination }),
      );
    }
    // TLS the mesh cannot originate (now): fail closed, before anything is sent (never plaintext).
    const refusal = cluster ? cluster.tlsRefusal() : (tlsFailure(tls) ?? (tls?.kind === 'mesh' ? this.tlsAgents.refusal(tls, `${host}:${port}`) : undefined));
    if (refusal) {
      telemetry?.answeredLocally(
        refusal instanceof TlsNotSupportedError
          ? 'tls-unsupported'
          : refusal instanceof TlsCredentialUnavailableError
            ? 'tls-credential'
            : 'tls-no-certificate',
        0,
      );
      sendLocalError(handler, refusal);
      return true;
    }

    const destActions = destination && actions ? actions.destination(destination) : undefined;
    const outHeaders = this.outgoingHeaders(request, headers, destActions);

    // Time left: the route timeout (or the caller's x-envoy-upstream-rq-timeout-ms, which Envoy
    // lets replace it), capped by the deadline of the inbound request being handled.
    let timeoutMs = actions?.timeoutMs ?? 0;
    if (request.rqTimeoutHeader !== undefined) {
      if (actions === TLS_PORT_ACTIONS) {
        // On a TLS port Envoy sees only the client's encrypted bytes: the header goes on untouched.
        outHeaders[RQ_TIMEOUT_HEADER] = request.rqTimeoutHeader;
      } else {
        const ms = parseTimeoutHeader(request.rqTimeoutHeader);
        if (ms !== undefined) timeoutMs = ms;
      }
    }
    let deadlineBound = false;
    const remaining = remainingTimeMs();
    if (remaining !== undefined) {
      if (remaining <= 0) {
        telemetry?.answeredLocally('deadline-exceeded', ResponseFlag.UT);
        sendLocalReply(handler, 504, 'deadline exceeded', { [RESPONSE_FLAGS_HEADER]: 'UT' });
        return true;
      }
      if (timeoutMs <= 0 || remaining < timeoutMs) {
        timeoutMs = remaining;
        deadlineBound = true;
      }
    }

    const newPath = actions?.rewritePath(request.path, matchIndex);
    const path = newPath === undefined ? opts.path : request.query ? `${newPath}?${request.query}` : newPath;
    const retry = actions ? actions.retry : DEFAULT_RETRY_POLICY;

    let hash: number | undefined;
    let setCookie: string | undefined;
    let sendOpts: Dispatcher.DispatchOptions;
    let passthrough: Dispatcher | undefined;
    if (!cluster || cluster.passthrough) {
      // Known to configuration without endpoints (resolution NONE, a Kubernetes service found by
      // the platform's DNS): connect to the destination as named, keep the Host the caller sent.
      // A DestinationRule originating TLS (ISTIO_MUTUAL too) has its own agent and an https origin.
      const originate = tls?.kind === 'originate' || tls?.kind === 'mesh' ? tls : undefined;
      passthrough = originate ? this.tlsAgents.get(originate) : this.passthrough();
      sendOpts = { ...opts, origin: `${originate ? 'https' : origin.scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`, path, headers: outHeaders };
    } else {
      const hashOn = cluster.hashOn;
      if (hashOn?.kind === 'cookie') {
        // A cookie policy may issue the cookie it hashes (Set-Cookie on the response).
        const cookie = cookieHash(hashOn, headers.get('cookie'), this.options.random);
        hash = cookie.hash;
        setCookie = cookie.setCookie;
      } else if (hashOn) {
        hash = this.hashOf(hashOn, request, headers);
      }
      // `servername` is read by undici's Request though its types do not list it.
      sendOpts = { ...opts, path, headers: outHeaders, servername: origin.servername } as Dispatcher.DispatchOptions;
    }
    // The service breaker (when the application configured one) decides before anything is sent.
    const breaker = cluster?.breaker;
    const ticket = breaker?.allow();
    if (breaker && !ticket) {
      telemetry?.answeredLocally('breaker-open', ResponseFlag.UO);
      answerBreakerOpen(handler, breaker, new BreakerOpenError(breaker.host), request.method, path);
      return true;
    }
    // Streamed bodies are wrapped even without retries: a failure of the caller's stream is then
    // known to be the caller's, not the upstream's.
    const body = opts.body != null ? ReplayableBody.wrap(opts.body, retry ? (this.options.retryBufferBytes ?? DEFAULT_RETRY_BUFFER_BYTES) : 0) : undefined;
    const hedgeAfterMs = cluster && retry && body === undefined && isIdempotent(request.method) ? cluster.hedgeAfterMs : 0;
    const upstream = new UpstreamRequest(handler, sendOpts, passthrough ? undefined : cluster, passthrough, {
      clock: this.options.clock,
      random: this.options.random,
      retry,
      timeoutMs,
      deadlineBound,
      responseOps: destActions?.response,
      setCookie,
      hash,
      avoidPreviousHosts: retry !== undefined && (retry.ignorePreviousHosts ?? cluster?.hashOn === undefined),
      hedgeAfterMs,
      retriableHeaderNames: retry && retry.retryOn & RetryOn['retriable-headers'] ? splitNames(headers.get('x-envoy-retriable-header-names')) : undefined,
      body,
      ticket,
      telemetry,
      urlTls: origin.scheme === 'https',
      live: this.live,
    });
    const sent = upstream.start();
    // Fire and forget, after the primary is on its way (see Mirror).
    if (route && route.mirrors.length > 0)
      this.mirror.send(route.mirrors, opts, origin.scheme, origin.port, path, outHeaders, actions?.timeoutMs ?? 0, telemetry);
    return sent;
  }

  /**
   * The cluster of a route destination, remembered per snapshot so the common request builds no
   * lookup key. A cluster still warming is not remembered: it may be replaced once it settles.
   */
  private clusterFor(destination: CompiledDestination, port: number): Cluster | undefined {
    const clusters = this.snapshotState().clusters;
    const known = clusters.get(destination);
    if (known !== undefined && known.port === port) return known.cluster;
    const cluster = this.options.clusters.get(destination.host, destination.subset, port);
    if (cluster && !cluster.warming) clusters.set(destination, { cluster, port });
    return cluster;
  }

  /** The headers sent upstream; the caller's per-request timeout header is kept on `request` instead. */
  private outgoingHeaders(request: MatchRequest, headers: RequestHeaders, destination: DestinationActions | undefined): Record<string, string | string[]> {
    const authority = request.authority;
    const raw = headers.raw;
    const noRules = !destination || (destination.request.length === 0 && destination.authority === undefined);
    if (noRules && (raw === undefined || raw === null)) return { host: authority };
    if (noRules && raw && typeof raw === 'object' && !Array.isArray(raw) && !(Symbol.iterator in raw)) {
      // Common case, no header rules: copy the caller's object as is (no lower-casing, no Map)
      // and add Host only if the caller did not set one.
      const plain: Record<string, string | string[]> = {};
      let host: string | string[] | undefined;
      for (const name in raw) {
        const value = (raw as Record<string, string | string[] | undefined>)[name];
        if (value === undefined) continue;
        if (name.length === 4 && name.toLowerCase() === 'host') host = value;
        else if (name.length === RQ_TIMEOUT_HEADER.length && name.toLowerCase() === RQ_TIMEOUT_HEADER) request.rqTimeoutHeader = String(value);
        else plain[name] = value;
      }
      plain.host = host ?? authority;
      return plain;
    }
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of headers.entries()) {
      if (name === RQ_TIMEOUT_HEADER) request.rqTimeoutHeader = value;
      else out[name] = value;
    }
    // The backend sees the service name it was called by, as behind a sidecar.
    out.host = destination?.authority ?? out.host ?? authority;
    if (destination) for (const ops of destination.request) applyHeaderOps(out, ops);
    return out;
  }

  /** The hash key of a header, query or source-IP policy (cookies: {@link cookieHash}). */
  private hashOf(on: Exclude<HashOn, { kind: 'cookie' }>, request: MatchRequest, headers: RequestHeaders): number | undefined {
    switch (on.kind) {
      case 'header': {
        const v = headers.get(on.name);
        return v === undefined ? undefined : hashKey(v);
      }
      case 'query': {
        const v = new QueryCache(request.query).get(on.name);
        return v === undefined ? undefined : hashKey(v);
      }
      case 'source-ip':
        // In-process, every request comes from this one workload: one stable key.
        return hashKey('source-ip');
    }
  }
}

/** The method in upper case, as matches compare it; the usual ones already are (no runtime call). */
function upperCaseMethod(method: string): string {
  switch (method) {
    case 'GET':
    case 'POST':
    case 'PUT':
    case 'DELETE':
    case 'HEAD':
    case 'PATCH':
    case 'OPTIONS':
      return method;
    default:
      return method.toUpperCase();
  }
}

/** A direct response or redirect carries the route's response header rules, as in Envoy. */
function routeReplyHeaders(actions: RouteActions, headers: Record<string, string | string[]>): Record<string, string | string[]> {
  if (actions.responseHeaders) applyHeaderOps(headers, actions.responseHeaders);
  return headers;
}

/** Envoy's test for a gRPC request: `application/grpc`, `application/grpc+proto`, `application/grpc;...`. */
function isGrpcRequest(contentType: string | undefined): boolean {
  if (!contentType?.startsWith('application/grpc')) return false;
  const next = contentType.charCodeAt(16);
  return Number.isNaN(next) || next === 43 /* + */ || next === 59; /* ; */
}

/** The request body's size for Istio's `istio_request_bytes`: known lengths, else Content-Length. */
function bodyBytes(body: unknown, contentLength: string | undefined): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  const n = contentLength === undefined ? 0 : Number(contentLength);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** `x-envoy-retriable-header-names`: a comma-separated list of response header names. */
function splitNames(value: string | undefined): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '');
  return names.length > 0 ? names : undefined;
}
