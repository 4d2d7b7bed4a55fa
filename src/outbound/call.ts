import type { Cluster, ResolvedTls } from '../cluster/cluster.js';
import type { PortRoute } from '../config/compile/port-routing.js';
import type { OutboundRequest, ResponseHandler, Upstream } from '../request-protocol.js';
import type { BreakerTicket } from '../resilience/service-breaker.js';
import type { DestinationActions, RouteActions } from '../routing/route-actions.js';
import type { RouteRequest } from '../match/route-request.js';
import type { CompiledDestination, CompiledHttpRoute } from '../routing/route-table.js';
import { NO_OBSERVER } from './observer.js';
import type { RequestObserver } from './observer.js';
import { RequestHeaders } from './request-headers.js';

/** Where the caller sent a request, parsed once per origin string. */
export interface Origin {
  readonly scheme: string;
  readonly hostname: string;
  readonly port: number;
  /** host[:port] as written, what the backend sees as Host. */
  readonly authority: string;
  /** TLS server name for the host (undefined for an IP literal). */
  readonly servername: string | undefined;
}

const NO_HEADERS = new RequestHeaders(undefined);
/** Until the rewrite layer sets them: a call answered before (or without) it allocates none. */
const NO_OUT_HEADERS: Record<string, string | string[]> = Object.freeze({}) as Record<string, string | string[]>;

/**
 * One request on its way through the outbound layers: what the caller sent, and what each layer
 * decided for it (service, route, destination, cluster, headers, time left), in the order the
 * layers run. It is the request view route matching reads, with headers parsed on first use.
 *
 * This class is an HTTP request's. Another protocol's call (gRPC's, src/grpc/grpc-call.ts)
 * extends it with its protocol side: its header view (`parse`, `header`), its `handler`, which
 * turns the mesh's local replies into that protocol's answers, and the rules below for what the
 * shared layers cannot do for it.
 */
export class OutboundCall implements RouteRequest {
  // ---- the caller's request ----
  /** The caller's handler, or the telemetry wrapped around it. */
  handler: ResponseHandler;
  readonly scheme: string;
  readonly authority: string;
  readonly port: number;
  method = '';
  path = '';
  query = '';
  headers: RequestHeaders = NO_HEADERS;
  /** The caller's x-envoy-upstream-rq-timeout-ms, taken out of the forwarded headers. */
  rqTimeoutHeader: string | undefined = undefined;
  observer: RequestObserver = NO_OBSERVER;

  // ---- service and route ----
  serviceHost = '';
  portRoute: PortRoute | undefined = undefined;
  route: CompiledHttpRoute | undefined = undefined;
  matchIndex = -1;
  actions: RouteActions | undefined = undefined;

  // ---- destination and cluster ----
  destination: CompiledDestination | undefined = undefined;
  /** The destination's host and port (the service's when the route names none). */
  host = '';
  destinationPort = 0;
  cluster: Cluster | undefined = undefined;
  tls: ResolvedTls | undefined = undefined;
  destinationActions: DestinationActions | undefined = undefined;

  // ---- what is sent ----
  /** The headers sent upstream (the route's rules applied). */
  outHeaders: Record<string, string | string[]> = NO_OUT_HEADERS;
  /** The request as each attempt sends it (headers, path, origin for a pass-through destination). */
  sent: OutboundRequest | undefined = undefined;
  /** Where a destination without endpoints of its own is sent (undefined: the cluster's pools). */
  passthrough: Upstream | undefined = undefined;
  hash: number | undefined = undefined;
  setCookie: string | undefined = undefined;
  /** Route timeout, capped by a propagated deadline; 0 for none. */
  timeoutMs = 0;
  deadlineBound = false;
  ticket: BreakerTicket | undefined = undefined;

  constructor(
    readonly request: OutboundRequest,
    handler: ResponseHandler,
    readonly origin: Origin,
  ) {
    this.handler = handler;
    this.scheme = origin.scheme;
    this.authority = origin.authority;
    this.port = origin.port;
  }

  /** Reads method, path, query and headers: only requests routed by the mesh need them. */
  parse(): void {
    const rawPath = this.request.path;
    const q = rawPath.indexOf('?');
    this.path = q < 0 ? rawPath : rawPath.slice(0, q);
    this.query = q < 0 ? '' : rawPath.slice(q + 1);
    this.method = upperCaseMethod(this.request.method);
    this.headers = new RequestHeaders(this.request.headers as ConstructorParameters<typeof RequestHeaders>[0]);
  }

  header(name: string): string | undefined {
    if (name === 'host' || name === ':authority') return this.headers.get('host') ?? this.authority;
    return this.headers.get(name);
  }

  // ---- the protocol's rules (HTTP's here) ----

  /**
   * A host no configuration covers: undefined sends it as is (ALLOW_ANY) or refuses it by the
   * outbound traffic policy (REGISTRY_ONLY); an error refuses it whatever the policy (a protocol
   * the mesh cannot pass through).
   */
  unknownHostRefusal(_serviceHost: string): Error | undefined {
    return undefined;
  }

  /**
   * A TLS or HTTPS port (`protocol`), which carries the caller's own TLS, routed by SNI: undefined
   * routes it so; an error refuses it (a protocol whose caller makes no TLS of its own).
   */
  tlsPortRefusal(_protocol: string): Error | undefined {
    return undefined;
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
