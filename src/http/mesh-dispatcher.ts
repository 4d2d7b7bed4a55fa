import { Agent, Dispatcher } from 'undici';
import { hashKey } from '../balancer/index.js';
import type { Clock, RandomSource } from '../clock.js';
import type { Snapshot } from '../config/snapshot.js';
import type { HashOn } from '../cluster/balancer-spec.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import { QueryCache } from '../routing/http-match.js';
import { resolveServiceHost } from '../routing/resolve-host.js';
import type { HeaderOps, RouteActions } from '../routing/route-actions.js';
import { applyHeaderOps, compileHeaderOps, routeActions } from '../routing/route-actions.js';
import type { RouteRequest } from '../routing/route-request.js';
import type { CompiledHttpRoute } from '../routing/route-table.js';
import { matchRoute, pickDestination } from '../routing/route-table.js';
import { UnknownHostError } from './errors.js';
import { sendLocalError, sendLocalReply } from './local-reply.js';
import { RequestHeaders } from './request-headers.js';
import { UpstreamHandler } from './upstream-handler.js';

export type OutboundTrafficPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

export interface MeshDispatcherOptions {
  readonly snapshot: () => Snapshot;
  readonly clusters: ClusterManager;
  readonly clock: Clock;
  readonly random: RandomSource;
  /** Hosts no configuration covers: pass through or fail; unset: the Sidecar's, else ALLOW_ANY. */
  readonly outboundTrafficPolicy: OutboundTrafficPolicy | undefined;
}

interface Origin {
  readonly scheme: string;
  readonly hostname: string;
  readonly port: number;
  /** host[:port] as written, what the backend sees as Host. */
  readonly authority: string;
}

/** Per-snapshot memo of host name resolution: the same names are asked for again and again. */
interface SnapshotState {
  readonly snapshot: Snapshot;
  readonly hosts: Map<string, string>;
}

/** The request view route matching reads; one per request, headers and query parsed lazily. */
class MatchRequest implements RouteRequest {
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
  private state: SnapshotState | undefined;
  private passthroughAgent: Agent | undefined;
  private closed = false;

  constructor(private readonly options: MeshDispatcherOptions) {
    super();
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    try {
      if (this.closed) throw new Error('the mesh is closed');
      return this.route(opts, handler);
    } catch (error) {
      sendLocalError(handler, error instanceof Error ? error : new Error(String(error)));
      return true;
    }
  }

  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.closed = true;
    const done = Promise.all([this.options.clusters.close(), this.passthroughAgent?.close()]).then(() => undefined);
    if (callback) void done.then(callback);
    else return done;
  }

  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    this.closed = true;
    const done = Promise.all([this.options.clusters.close(), this.passthroughAgent?.destroy()]).then(() => undefined);
    if (cb) void done.then(cb);
    else return done;
  }

  private passthrough(): Agent {
    this.passthroughAgent ??= new Agent();
    return this.passthroughAgent;
  }

  private origin(raw: string | URL | undefined): Origin {
    const key = typeof raw === 'string' ? raw : raw ? raw.origin : '';
    let origin = this.origins.get(key);
    if (!origin) {
      const url = new URL(key);
      const scheme = url.protocol.slice(0, -1);
      origin = { scheme, hostname: url.hostname, port: url.port ? Number(url.port) : scheme === 'https' ? 443 : 80, authority: url.host };
      if (this.origins.size > 10_000) this.origins.clear();
      this.origins.set(key, origin);
    }
    return origin;
  }

  private snapshotState(): SnapshotState {
    const snapshot = this.options.snapshot();
    if (this.state?.snapshot !== snapshot) this.state = { snapshot, hosts: new Map() };
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
    const table = snapshot.routeTable(serviceHost);
    if (!table && !snapshot.service(serviceHost)) {
      // No configuration covers the host: ALLOW_ANY sends it as is, REGISTRY_ONLY refuses it.
      const policy = this.options.outboundTrafficPolicy ?? snapshot.outboundTrafficPolicy ?? 'ALLOW_ANY';
      if (policy === 'REGISTRY_ONLY' && !serviceHost.endsWith(`.svc.${snapshot.clusterDomain}`)) {
        sendLocalError(handler, new UnknownHostError(serviceHost));
        return true;
      }
      return this.passthrough().dispatch(opts, handler);
    }

    const rawPath = opts.path;
    const q = rawPath.indexOf('?');
    const path = q < 0 ? rawPath : rawPath.slice(0, q);
    const query = q < 0 ? '' : rawPath.slice(q + 1);
    const headers = new RequestHeaders(opts.headers as ConstructorParameters<typeof RequestHeaders>[0]);
    const request = new MatchRequest(opts.method.toUpperCase(), origin.scheme, origin.authority, origin.port, path, query, headers);

    let route: CompiledHttpRoute | undefined;
    let matchIndex = -1;
    if (table) {
      const hit = matchRoute(table, request);
      if (!hit) {
        sendLocalReply(handler, 404, 'route not found');
        return true;
      }
      route = hit.route;
      matchIndex = hit.matchIndex;
    }
    const actions = route ? routeActions(route) : undefined;
    if (actions?.directResponse) {
      sendLocalReply(handler, actions.directResponse.status, actions.directResponse.body);
      return true;
    }
    if (actions?.redirect) {
      const location = actions.redirect.location(origin.scheme, request.authority, origin.port, path, query);
      sendLocalReply(handler, actions.redirect.status, '', { location });
      return true;
    }
    const fault = actions?.fault;
    if (fault) {
      if (fault.abortFraction > 0 && this.options.random() < fault.abortFraction) {
        sendLocalReply(handler, fault.abortStatus, 'fault filter abort');
        return true;
      }
      if (fault.delayMs > 0 && this.options.random() < fault.delayFraction) {
        const timer = setTimeout(() => this.forward(opts, handler, origin, serviceHost, route, matchIndex, actions, request, headers), fault.delayMs);
        timer.unref?.();
        return true;
      }
    }
    return this.forward(opts, handler, origin, serviceHost, route, matchIndex, actions, request, headers);
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
  ): boolean {
    const destination = route ? pickDestination(route, this.options.random()) : undefined;
    if (route && !destination) {
      sendLocalReply(handler, 500, 'route has no destination');
      return true;
    }
    const host = destination?.host ?? serviceHost;
    const port = destination?.port ?? origin.port;
    const subset = destination?.subset;

    const outHeaders = this.outgoingHeaders(headers, request.authority, actions, destination?.spec.headers);
    const newPath = actions?.rewritePath(request.path, matchIndex);
    const path = newPath === undefined ? opts.path : request.query ? `${newPath}?${request.query}` : newPath;

    const cluster = this.options.clusters.get(host, subset, port);
    if (!cluster || cluster.passthrough) {
      if (subset !== undefined && !cluster) {
        sendLocalReply(handler, 503, 'no healthy upstream');
        return true;
      }
      // Known to configuration without endpoints (resolution NONE, a Kubernetes service found by
      // the platform's DNS): connect to the destination as named, keep the Host the caller sent.
      return this.passthrough().dispatch(
        { ...opts, origin: `${origin.scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`, path, headers: outHeaders },
        handler,
      );
    }
    const picked = cluster.pick(cluster.hashOn ? this.hashOf(cluster.hashOn, request, headers) : undefined);
    if (!picked) {
      sendLocalReply(handler, 503, 'no healthy upstream');
      return true;
    }
    const upstream = new UpstreamHandler(handler, picked, this.options.clock, actions?.responseHeaders, actions?.timeoutMs ?? 0);
    return cluster.pool(picked).dispatch({ ...opts, path, headers: outHeaders }, upstream);
  }

  private outgoingHeaders(
    headers: RequestHeaders,
    authority: string,
    actions: RouteActions | undefined,
    destinationHeaders: unknown,
  ): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of headers.entries()) out[name] = value;
    // The backend sees the service name it was called by, as behind a sidecar.
    out.host = actions?.authority ?? out.host ?? authority;
    if (actions?.requestHeaders) applyHeaderOps(out, actions.requestHeaders);
    const perDestination = destinationHeaders as { request?: unknown } | undefined;
    if (perDestination?.request) {
      const ops = routeDestinationOps(perDestination.request);
      if (ops) applyHeaderOps(out, ops);
    }
    return out;
  }

  private hashOf(on: HashOn, request: MatchRequest, headers: RequestHeaders): number | undefined {
    switch (on.kind) {
      case 'header': {
        const v = headers.get(on.name);
        return v === undefined ? undefined : hashKey(v);
      }
      case 'query': {
        const v = new QueryCache(request.query).get(on.name);
        return v === undefined ? undefined : hashKey(v);
      }
      case 'cookie': {
        const v = cookieValue(headers.get('cookie'), on.name);
        return v === undefined ? undefined : hashKey(v);
      }
      case 'source-ip':
        // In-process, every request comes from this one workload: one stable key.
        return hashKey('source-ip');
    }
  }
}

const destinationOps = new WeakMap<object, HeaderOps | undefined>();
/** Per-destination header rules, compiled on first use (the spec object lives in the snapshot). */
function routeDestinationOps(spec: unknown): HeaderOps | undefined {
  if (typeof spec !== 'object' || spec === null) return undefined;
  if (!destinationOps.has(spec)) destinationOps.set(spec, compileHeaderOps(spec));
  return destinationOps.get(spec);
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
