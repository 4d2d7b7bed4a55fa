import type { ResourceRef } from '../../issue.js';
import { IpBlocks } from '../../security/authz/ip-block.js';
import type { RouteTable } from '../../routing/route-table.js';
import { tableForPort } from '../../routing/route-table.js';
import type { RouteSource } from '../../match/route-request.js';
import type { TlsPortRoutes, TlsRouteSpec, TlsSubnet } from '../../routing/tls-route.js';
import { compileTlsRoutes } from '../../routing/tls-route.js';
import type { ServiceDef } from '../snapshot.js';
import type { MeshResource } from '../resource.js';
import type { CompileContext, IssueSink } from './context.js';
import { locate } from './context.js';
import type { HostTable } from './hosts.js';
import { hostMatches, qualifyHost } from './hosts.js';

/**
 * How calls to one (service host, port) are routed: `http` ports take the VirtualService's `http`
 * routes; `tls` ports (protocol TLS or HTTPS) take its `tls` routes, by SNI, and never `http` ones.
 */
export type PortRoute = { readonly kind: 'http'; readonly table: RouteTable | undefined } | TlsPortRoute;

export type TlsPortRoute = { readonly kind: 'tls' } & TlsPortRoutes;

/** An HTTP port no route table covers: the service's default route. */
const DEFAULT_ROUTE: PortRoute = Object.freeze({ kind: 'http', table: undefined });

/** The protocol of a port no ServiceEntry declares (a Kubernetes Service's), when known. */
export type PortProtocolOf = (host: string, port: number) => string | undefined;

/** istiod's protocol.Parse: case-insensitive; anything else is "unsupported" (sniffed as HTTP). */
export function parseProtocol(raw: string | undefined): string {
  const lower = (raw ?? '').toLowerCase();
  switch (lower) {
    case 'tcp':
    case 'udp':
    case 'grpc':
    case 'grpc-web':
    case 'http':
    case 'http2':
    case 'https':
    case 'tls':
    case 'mongo':
    case 'redis':
    case 'mysql':
      return lower.toUpperCase();
    case 'http_proxy':
      return 'HTTP_PROXY';
    default:
      return 'UNSUPPORTED';
  }
}

/** protocol.Instance.IsTLS: the ports Envoy routes by SNI with a tcp_proxy, never with HTTP routes. */
export function tlsProtocolOf(protocol: string | undefined): 'TLS' | 'HTTPS' | undefined {
  // Read on every call: only `tls` and `https` (any case) are TLS, so other lengths are not.
  if (protocol === undefined || (protocol.length !== 3 && protocol.length !== 5)) return undefined;
  const p = parseProtocol(protocol);
  return p === 'TLS' || p === 'HTTPS' ? p : undefined;
}

/** The `tls` routes a route table carries (its VirtualService's `spec.tls`). */
export function tlsSpecsOf(table: RouteTable | undefined): readonly TlsRouteSpec[] {
  return table?.tls ?? [];
}

/**
 * The routing of each (host, port) the caller may call, built with the snapshot. A service port's
 * protocol comes from its ServiceEntry (`ports[].protocol`); a Kubernetes Service's, known only at
 * run time, is asked of the caller ({@link PortRouting.routeFor}'s `protocolOf`). What is
 * compiled for a (route table, port) is kept for the snapshot's life.
 */
export class PortRouting {
  private readonly compiled = new Map<RouteTable | undefined, Map<string, TlsPortRoute>>();
  /** One answer object per table, so a call allocates nothing (and memos keyed by it hold). */
  private readonly httpRoutes = new WeakMap<RouteTable, PortRoute>();

  constructor(
    private readonly routes: HostTable<RouteTable>,
    private readonly service: (host: string) => ServiceDef | undefined,
    private readonly ctx: CompileContext,
  ) {}

  /**
   * How a call to `host:port` is routed. `protocolOf`: the port's protocol when no ServiceEntry
   * declares the host (a Kubernetes Service's, from discovery), asked only then.
   */
  routeFor(host: string, port: number, protocolOf?: PortProtocolOf): PortRoute {
    const table = this.routes.lookup(host);
    const service = this.service(host);
    const declared = service ? service.ports.find((p) => p.number === port)?.protocol : protocolOf?.(host, port);
    const tls = tlsProtocolOf(declared);
    if (!tls) return this.httpRoute(httpTable(table, port));
    return this.tlsRoutes(table, host, port, tls, service?.addresses ?? []);
  }

  private httpRoute(table: RouteTable | undefined): PortRoute {
    if (!table) return DEFAULT_ROUTE;
    let route = this.httpRoutes.get(table);
    if (!route) this.httpRoutes.set(table, (route = Object.freeze({ kind: 'http', table })));
    return route;
  }

  private tlsRoutes(table: RouteTable | undefined, host: string, port: number, protocol: 'TLS' | 'HTTPS', addresses: readonly string[]): TlsPortRoute {
    let byPort = this.compiled.get(table);
    if (!byPort) this.compiled.set(table, (byPort = new Map()));
    const key = `${host}\0${port}\0${protocol}`;
    let routes = byPort.get(key);
    if (!routes) {
      if (byPort.size > 10_000) byPort.clear();
      routes = compilePortRoutes(table, host, port, protocol, addresses, this.ctx);
      byPort.set(key, routes);
    }
    return routes;
  }
}

/** A `destinationSubnets` entry (validated: an IP address or a CIDR block). */
function compileSubnet(text: string): TlsSubnet {
  const slash = text.indexOf('/');
  const bits = slash >= 0 ? Number(text.slice(slash + 1)) : text.includes(':') ? 128 : 32;
  const block = new IpBlocks([text]);
  return { text, bits, has: (address) => block.has(address) };
}

/** A table with no `http` routes (a VirtualService with `tls` routes only) routes no HTTP call. */
function httpTable(table: RouteTable | undefined, port: number): RouteTable | undefined {
  if (table && table.routes.length === 0 && (table.tls?.length ?? 0) > 0) return undefined;
  return tableForPort(table, port);
}

function compilePortRoutes(
  table: RouteTable | undefined,
  host: string,
  port: number,
  protocol: 'TLS' | 'HTTPS',
  addresses: readonly string[],
  ctx: CompileContext,
): TlsPortRoute {
  const specs = tlsSpecsOf(table);
  const source: RouteSource = { namespace: ctx.namespace, labels: ctx.workloadLabels };
  const resource = table?.resource;
  const routes =
    resource && specs.length > 0
      ? compileTlsRoutes(specs, resource, port, source, (h) => qualifyHost(h, resource.namespace, ctx.clusterDomain), compileSubnet)
      : [];
  // No tls match applies to this caller and port: the service itself, as istiod's fallback chain.
  return Object.freeze({ kind: 'tls', host, port, protocol, resource: routes.length > 0 ? resource : undefined, routes, addresses });
}

/**
 * `tls` routes that can never apply: the VirtualService's hosts name services whose ports are not
 * TLS or HTTPS (Istio builds SNI filter chains only for those). Kubernetes Services' protocols
 * are known only at run time and are not judged here.
 */
export function checkUnusedTlsRoutes(
  routes: HostTable<RouteTable>,
  services: HostTable<ServiceDef>,
  resources: readonly MeshResource[],
  ctx: CompileContext,
  sink: IssueSink,
): void {
  const reported = new Set<string>();
  const report = (resource: ResourceRef, host: string, message: string) => {
    const key = `${resource.kind}/${resource.namespace}/${resource.name}/${host}`;
    if (reported.has(key)) return;
    reported.add(key);
    const written = resources.find((r) => r.kind === resource.kind && r.metadata.namespace === resource.namespace && r.metadata.name === resource.name);
    sink.warn({ code: 'tls-routes-unused', message, resource, path: 'spec.tls', ...(written ? { location: locate(written, ['spec', 'tls']) } : {}) });
  };
  const k8sSuffix = `.svc.${ctx.clusterDomain}`;
  for (const [host, table] of routes.entries()) {
    if (tlsSpecsOf(table).length === 0) continue;
    // The services the host covers: its own (or a wildcard entry's), and for a wildcard host every
    // entry under it.
    const own = services.lookup(host);
    const covered = [
      ...(own ? [own] : []),
      ...(host.startsWith('*') ? [...services.entries()].filter(([h]) => h !== host && hostMatches(host, h)).map(([, s]) => s) : []),
    ];
    if (covered.length === 0) {
      if (host.endsWith(k8sSuffix)) continue;
      report(table.resource, host, `host "${host}" is in no ServiceEntry, so no port of it is known to be TLS or HTTPS; its tls routes apply to none`);
      continue;
    }
    if (covered.some((s) => s.ports.some((p) => tlsProtocolOf(p.protocol)))) continue;
    const service = covered[0]!;
    const ports = service.ports.map((p) => `${p.number}/${p.protocol}`).join(', ') || 'none';
    report(
      table.resource,
      host,
      `ServiceEntry ${service.source.namespace}/${service.source.name} declares no TLS or HTTPS port for "${host}" (ports: ${ports}); tls routes apply only to those, so they are unused (http routes serve the other ports)`,
    );
  }
}
