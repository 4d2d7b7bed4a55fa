import type { HttpMatchSpec } from '../../match/http-match.js';
import { mergeDelegateMatch } from '../../routing/delegate-match.js';
import type { CompileRouteInput, CompiledHttpRoute, HttpRouteSpec, RouteTable } from '../../routing/route-table.js';
import { compileHttpRoute, portsOf } from '../../routing/route-table.js';
import type { RouteSource } from '../../match/route-request.js';
import type { TlsRouteSpec } from '../../routing/tls-route.js';
import type { GatewayRouteKind, MeshResource } from '../resource.js';
import { resourceRef } from '../resource.js';
import { RecentCache } from '../recent-cache.js';
import type { Steps } from '../slices.js';
import { every } from '../slices.js';
import type { CompileContext, IssueSink } from './context.js';
import type { GatewayOrigin } from './gateway-routes.js';
import { GatewayRouteConverter } from './gateway-routes.js';
import { locate, sortByAge } from './context.js';
import { HostTable, qualifyHost } from './hosts.js';
import type { SidecarScope } from './sidecar-scope.js';
import { exportRank, isExportedTo } from './visibility.js';

export interface VirtualServiceSpec {
  readonly hosts?: readonly string[];
  readonly gateways?: readonly string[];
  readonly http?: readonly HttpRouteSpec[];
  readonly tls?: readonly TlsRouteSpec[];
  readonly exportTo?: readonly string[];
}

/** A VirtualService, or the VirtualService view of Gateway API routes (with where each entry came from). */
export type VirtualServiceResource = MeshResource<'VirtualService' | GatewayRouteKind, VirtualServiceSpec> & {
  readonly origin?: GatewayOrigin;
};

function describeOwner(vs: VirtualServiceResource): string {
  return `${vs.kind} ${vs.metadata.namespace}/${vs.metadata.name}`;
}

/**
 * Istio turns Gateway API routes into VirtualServices and, for the mesh, never merges
 * VirtualServices: when both kinds claim a host, one wins by the usual order and the other is
 * ignored for that host.
 */
const MIXED_KINDS =
  'Istio turns HTTPRoutes into VirtualServices and does not merge VirtualServices for the mesh, so the other is ignored for this host; keep one kind per host';

/** A VirtualService applies to sidecars (and so to us) when it names no gateways or names `mesh`. */
function appliesToMesh(spec: VirtualServiceSpec): boolean {
  return !spec.gateways || spec.gateways.length === 0 || spec.gateways.includes('mesh');
}

/**
 * Builds the host → route table map the caller sees. When several VirtualServices claim a host,
 * Istio's order decides (private to the caller's namespace, then exported to it by name, then
 * public; oldest first within each) and the others are reported, as `istioctl analyze` does
 * (IST0109). Compiled tables are cached per resource so unchanged VirtualServices are not rebuilt.
 * Yields between VirtualServices, so a large configuration compiles in slices.
 */
export class VirtualServiceCompiler {
  private readonly cache = new RecentCache<VirtualServiceResource, { deps: readonly MeshResource[]; table: RouteTable }>();
  private readonly gatewayRoutes = new GatewayRouteConverter();

  *build(resources: readonly MeshResource[], ctx: CompileContext, scope: SidecarScope, sink: IssueSink): Steps<HostTable<RouteTable>> {
    const converted = this.gatewayRoutes.convert(resources, ctx);
    const all = sortByAge(inSourceOrder(resources.filter((r) => r.kind === 'VirtualService') as VirtualServiceResource[], converted, resources));
    yield;
    const delegates = new Map<string, VirtualServiceResource>();
    for (const vs of all) {
      if ((!vs.spec.hosts || vs.spec.hosts.length === 0) && !vs.origin) delegates.set(`${vs.metadata.namespace}/${vs.metadata.name}`, vs);
    }
    const roots = all
      .filter((vs) => vs.spec.hosts && vs.spec.hosts.length > 0 && appliesToMesh(vs.spec))
      .filter((vs) => isExportedTo(vs.spec.exportTo, vs.metadata.namespace, ctx.namespace))
      .map((vs, age) => ({ vs, age, rank: rankFor(vs, ctx.namespace) }))
      .sort((a, b) => a.rank - b.rank || a.age - b.age)
      .map((e) => e.vs);
    yield;

    const source: RouteSource = { namespace: ctx.namespace, labels: ctx.workloadLabels };
    const table = new HostTable<RouteTable>();
    const owner = new Map<string, VirtualServiceResource>();
    const pace = every(64);
    for (const vs of roots) {
      // Compiling a VirtualService is a step; finding it compiled is a fraction of one.
      if (!this.cache.has(vs) || pace()) yield;
      const ns = vs.metadata.namespace;
      let compiled: RouteTable | undefined;
      vs.spec.hosts!.forEach((raw, i) => {
        const host = qualifyHost(raw, ns, ctx.clusterDomain);
        if (!scope.isImported(host, ns)) return;
        const first = owner.get(host);
        if (first) {
          const mixed = (first.kind === 'VirtualService') !== (vs.kind === 'VirtualService');
          const hostPath = vs.origin ? vs.origin.hostPath : ['spec', 'hosts', i];
          sink.warn({
            code: mixed ? 'conflicting-route-kinds' : 'conflicting-virtual-service',
            message: mixed
              ? `host "${host}" is also claimed by ${describeOwner(first)}, which wins for this caller (Istio's order: private to the caller's namespace, exported to it, Gateway API routes of its namespace, public; oldest first); ${MIXED_KINDS}`
              : `host "${host}" is also claimed by ${describeOwner(first)}, which wins for this caller; merge them or scope one with exportTo (IST0109)`,
            resource: resourceRef(vs),
            path: hostPath.map((seg, n) => (typeof seg === 'number' ? `[${seg}]` : n === 0 ? seg : `.${seg}`)).join(''),
            location: locate(vs, hostPath),
          });
          return;
        }
        owner.set(host, vs);
        compiled ??= this.compile(vs, delegates, ctx, source, sink);
        table.set(host, compiled);
      });
    }
    this.cache.passed();
    return table;
  }

  private compile(
    vs: VirtualServiceResource,
    delegates: ReadonlyMap<string, VirtualServiceResource>,
    ctx: CompileContext,
    source: RouteSource,
    sink: IssueSink,
  ): RouteTable {
    const deps = (vs.spec.http ?? [])
      .map((route) => (route.delegate ? delegates.get(`${route.delegate.namespace ?? vs.metadata.namespace}/${route.delegate.name ?? ''}`) : undefined))
      .filter((d): d is VirtualServiceResource => d !== undefined);
    const cached = this.cache.get(vs);
    if (cached && cached.deps.length === deps.length && cached.deps.every((d, i) => d === deps[i])) return cached.table;

    const inputs: CompileRouteInput[] = [];
    const qualifyIn = (ns: string) => (host: string) => qualifyHost(host, ns, ctx.clusterDomain);
    (vs.spec.http ?? []).forEach((route, i) => {
      const origin = vs.origin?.entries[i];
      if (origin) {
        inputs.push({ spec: route, resource: origin.resource, path: origin.path, qualify: qualifyIn(vs.metadata.namespace) });
        return;
      }
      if (!route.delegate) {
        inputs.push({ spec: route, resource: resourceRef(vs), path: `spec.http[${i}]`, qualify: qualifyIn(vs.metadata.namespace) });
        return;
      }
      const delegateNs = route.delegate.namespace ?? vs.metadata.namespace;
      const delegate = delegates.get(`${delegateNs}/${route.delegate.name ?? ''}`);
      if (!delegate || !isExportedTo(delegate.spec.exportTo, delegateNs, vs.metadata.namespace)) {
        sink.warn({
          code: 'missing-delegate',
          message: `delegate VirtualService ${delegateNs}/${route.delegate.name ?? ''} ${delegate ? 'is not exported to namespace ' + vs.metadata.namespace : 'does not exist (it must have no hosts)'}; this route is skipped`,
          resource: resourceRef(vs),
          path: `spec.http[${i}].delegate`,
          location: locate(vs, ['spec', 'http', i, 'delegate']),
        });
        return;
      }
      inputs.push(...expandDelegate(route, delegate, qualifyIn(delegateNs)));
    });
    const routes = inputs.map((input, index): CompiledHttpRoute => compileHttpRoute(input, index, source));
    const ports = portsOf(routes);
    const tls = vs.origin ? undefined : vs.spec.tls;
    const table: RouteTable = { resource: resourceRef(vs), routes, ...(ports ? { ports } : {}), ...(tls && tls.length > 0 ? { tls } : {}) };
    this.cache.set(vs, { deps, table });
    return table;
  }
}

/**
 * Istio's order for the mesh: private to the caller's namespace, exported to it by name, then the
 * public ones, Gateway API routes of the caller's own namespace first ("consumer override").
 */
function rankFor(vs: VirtualServiceResource, callerNamespace: string): number {
  const rank = exportRank(vs.spec.exportTo, vs.metadata.namespace, callerNamespace);
  return vs.origin && vs.metadata.namespace === callerNamespace ? rank - 0.5 : rank;
}

/** Gateway API views placed where their first route was read, so files keep `kubectl apply` order. */
function inSourceOrder(
  virtualServices: VirtualServiceResource[],
  converted: readonly VirtualServiceResource[],
  resources: readonly MeshResource[],
): VirtualServiceResource[] {
  if (converted.length === 0) return virtualServices;
  const position = new Map<MeshResource, number>();
  resources.forEach((r, i) => position.set(r, i));
  const at = (vs: VirtualServiceResource) => position.get(vs.origin ? vs.origin.source : vs) ?? 0;
  return [...virtualServices, ...converted].sort((a, b) => at(a) - at(b));
}

/** A delegate's routes with the root route's match merged in; conflicting combinations drop out. */
function expandDelegate(root: HttpRouteSpec, delegate: VirtualServiceResource, qualify: (h: string) => string): CompileRouteInput[] {
  const out: CompileRouteInput[] = [];
  const rootMatches = root.match ?? [];
  (delegate.spec.http ?? []).forEach((route, i) => {
    if (route.delegate) return; // Istio supports one level of delegation.
    let match: readonly HttpMatchSpec[] | undefined = route.match;
    if (rootMatches.length > 0) {
      const childMatches = route.match && route.match.length > 0 ? route.match : [{}];
      const merged: HttpMatchSpec[] = [];
      for (const r of rootMatches)
        for (const c of childMatches) {
          const m = mergeDelegateMatch(r, c);
          if (m) merged.push(m);
        }
      if (merged.length === 0) return;
      match = merged;
    }
    out.push({ spec: { ...route, match }, resource: resourceRef(delegate), path: `spec.http[${i}]`, qualify });
  });
  return out;
}
