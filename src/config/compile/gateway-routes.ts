import type { HttpMatchSpec } from '../../match/http-match.js';
import type { HttpRouteSpec, RouteDestinationSpec } from '../../routing/route-table.js';
import type { StringMatchSpec } from '../../match/string-match.js';
import type { ResourceRef } from '../../issue.js';
import type { GatewayRouteKind, MeshResource } from '../resource.js';
import { resourceRef } from '../resource.js';
import { gatewayDurationMs } from '../validate/gateway-api/route-checks.js';
import type { CompileContext } from './context.js';
import { sortByAge } from './context.js';

/**
 * Gateway API routes attached to a Service (GAMMA), turned into the VirtualService form the route
 * tables compile from, the way istiod does it (pilot/pkg/config/kube/gateway): one route entry per
 * match, sorted by the Gateway API's precedence, all routes for one Service merged into one table.
 */

interface GatewayParentRef {
  readonly group?: string;
  readonly kind?: string;
  readonly namespace?: string;
  readonly name: string;
  readonly port?: number;
}

interface GatewayBackendRef {
  readonly group?: string;
  readonly kind?: string;
  readonly name: string;
  readonly namespace?: string;
  readonly port?: number;
  readonly weight?: number;
  readonly filters?: readonly GatewayFilter[];
}

interface HeaderModifier {
  readonly set?: readonly { readonly name: string; readonly value: string }[];
  readonly add?: readonly { readonly name: string; readonly value: string }[];
  readonly remove?: readonly string[];
}

interface PathModifier {
  readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch';
  readonly replaceFullPath?: string;
  readonly replacePrefixMatch?: string;
}

interface GatewayFilter {
  readonly type: string;
  readonly requestHeaderModifier?: HeaderModifier;
  readonly responseHeaderModifier?: HeaderModifier;
  readonly requestMirror?: {
    readonly backendRef: GatewayBackendRef;
    readonly percent?: number;
    readonly fraction?: { readonly numerator: number; readonly denominator?: number };
  };
  readonly requestRedirect?: {
    readonly scheme?: string;
    readonly hostname?: string;
    readonly path?: PathModifier;
    readonly port?: number;
    readonly statusCode?: number;
  };
  readonly urlRewrite?: { readonly hostname?: string; readonly path?: PathModifier };
}

interface KeyedMatch {
  readonly type?: 'Exact' | 'RegularExpression';
  readonly name: string;
  readonly value: string;
}

interface GatewayMatch {
  readonly path?: { readonly type?: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value?: string };
  readonly headers?: readonly KeyedMatch[];
  readonly queryParams?: readonly KeyedMatch[];
  readonly method?: string | { readonly type?: 'Exact' | 'RegularExpression'; readonly service?: string; readonly method?: string };
}

interface GatewayRule {
  readonly name?: string;
  readonly matches?: readonly GatewayMatch[];
  readonly filters?: readonly GatewayFilter[];
  readonly backendRefs?: readonly GatewayBackendRef[];
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
  readonly retry?: { readonly attempts?: number; readonly backoff?: string; readonly codes?: readonly number[] };
}

export interface GatewayRouteSpec {
  readonly parentRefs?: readonly GatewayParentRef[];
  readonly hostnames?: readonly string[];
  readonly rules?: readonly GatewayRule[];
}

export type GatewayRouteResource = MeshResource<GatewayRouteKind, GatewayRouteSpec>;

/** Where each route entry of a converted table was written, for explain and findings. */
export interface GatewayOrigin {
  readonly entries: readonly { readonly resource: ResourceRef; readonly path: string }[];
  /** The parentRef that attached the first route to the host. */
  readonly hostPath: readonly (string | number)[];
  /** The first (oldest) route, whose place among the resources orders the view among VirtualServices. */
  readonly source: MeshResource;
}

/** A converted route: one table entry per rule match, with the field it came from. */
interface ConvertedEntry {
  readonly spec: HttpRouteSpec;
  readonly resource: ResourceRef;
  readonly path: string;
}

const SERVICE_GROUPS = new Set(['', 'core']);

function isServiceParent(p: GatewayParentRef): boolean {
  return SERVICE_GROUPS.has(p.group ?? 'gateway.networking.k8s.io') && p.kind === 'Service';
}

function serviceHost(name: string, namespace: string, domain: string): string {
  return `${name}.${namespace}.svc.${domain}`.toLowerCase();
}

function keyed(list: readonly KeyedMatch[] | undefined, header: boolean): Record<string, StringMatchSpec> | undefined {
  if (!list || list.length === 0) return undefined;
  const out: Record<string, StringMatchSpec> = {};
  // The Gateway API: of entries with equivalent names (header names in any case), the first counts.
  for (const m of list) out[header ? m.name.toLowerCase() : m.name] ??= m.type === 'RegularExpression' ? { regex: m.value } : { exact: m.value };
  return out;
}

function httpMatch(m: GatewayMatch): HttpMatchSpec {
  const type = m.path?.type ?? 'PathPrefix';
  const value = m.path?.value ?? '/';
  const uri: StringMatchSpec = type === 'Exact' ? { exact: value } : type === 'RegularExpression' ? { regex: value } : { pathPrefix: value };
  return {
    uri,
    ...(typeof m.method === 'string' ? { method: { exact: m.method } } : {}),
    ...(m.headers?.length ? { headers: keyed(m.headers, true)! } : {}),
    ...(m.queryParams?.length ? { queryParams: keyed(m.queryParams, false)! } : {}),
  };
}

/** gRPC calls are POSTs to /<service>/<method>; istiod matches that path. */
function grpcMatch(m: GatewayMatch): HttpMatchSpec {
  const method = typeof m.method === 'object' ? m.method : undefined;
  let uri: StringMatchSpec | undefined;
  if (method) {
    if (method.type === 'RegularExpression') {
      uri = { regex: method.method ? `/${method.service || '[^/]+'}/${method.method}` : `/${method.service}/.+` };
    } else if (method.service && method.method) {
      uri = { exact: `/${method.service}/${method.method}` };
    } else if (method.service) {
      uri = { prefix: `/${method.service}/` };
    } else if (method.method) {
      uri = { regex: `/[^/]+/${escapeRe2(method.method)}` };
    }
  }
  return { ...(uri ? { uri } : {}), ...(m.headers?.length ? { headers: keyed(m.headers, true)! } : {}) };
}

function escapeRe2(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

function headerOps(h: HeaderModifier | undefined): Record<string, unknown> | undefined {
  if (!h) return undefined;
  const map = (list: readonly { name: string; value: string }[] | undefined) =>
    list && list.length > 0 ? Object.fromEntries(list.map((e) => [e.name.toLowerCase(), e.value])) : undefined;
  const set = map(h.set);
  const add = map(h.add);
  return { ...(set ? { set } : {}), ...(add ? { add } : {}), ...(h.remove && h.remove.length > 0 ? { remove: h.remove.map((n) => n.toLowerCase()) } : {}) };
}

function headersOf(filters: readonly GatewayFilter[] | undefined): Record<string, unknown> | undefined {
  const request = headerOps(filters?.find((f) => f.type === 'RequestHeaderModifier')?.requestHeaderModifier);
  const response = headerOps(filters?.find((f) => f.type === 'ResponseHeaderModifier')?.responseHeaderModifier);
  if (!request && !response) return undefined;
  return { ...(request ? { request } : {}), ...(response ? { response } : {}) };
}

function destination(ref: GatewayBackendRef, routeNamespace: string, domain: string): { host: string; port?: { number: number } } {
  return { host: serviceHost(ref.name, ref.namespace ?? routeNamespace, domain), ...(ref.port !== undefined ? { port: { number: ref.port } } : {}) };
}

function durationText(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  // A Gateway API duration is also a Go one; zero means no timeout.
  return gatewayDurationMs(text) > 0 ? text : undefined;
}

function convertRule(route: GatewayRouteResource, rule: GatewayRule, ruleIndex: number, match: GatewayMatch | undefined, ctx: CompileContext): HttpRouteSpec {
  const ns = route.metadata.namespace;
  const grpc = route.kind === 'GRPCRoute';
  const filters = rule.filters ?? [];
  const spec: Record<string, unknown> = { name: rule.name ?? `${ns}.${route.metadata.name}.${ruleIndex}` };
  if (match) spec['match'] = [grpc ? grpcMatch(match) : httpMatch(match)];
  const headers = headersOf(filters);
  if (headers) spec['headers'] = headers;
  const mirrors = filters
    .filter((f) => f.type === 'RequestMirror' && f.requestMirror)
    .map((f) => {
      const m = f.requestMirror!;
      const value = m.fraction ? (m.fraction.numerator / (m.fraction.denominator ?? 100)) * 100 : (m.percent ?? 100);
      return { destination: destination(m.backendRef, ns, ctx.clusterDomain), percentage: { value } };
    });
  if (mirrors.length > 0) spec['mirrors'] = mirrors;
  const rewrite = filters.find((f) => f.type === 'URLRewrite')?.urlRewrite;
  if (rewrite) {
    spec['rewrite'] = {
      ...(rewrite.hostname ? { authority: rewrite.hostname } : {}),
      ...(rewrite.path?.type === 'ReplaceFullPath' ? { uri: rewrite.path.replaceFullPath } : {}),
      ...(rewrite.path?.type === 'ReplacePrefixMatch' ? { replacePrefixMatch: rewrite.path.replacePrefixMatch } : {}),
    };
  }
  const redirect = filters.find((f) => f.type === 'RequestRedirect')?.requestRedirect;
  if (redirect) {
    spec['redirect'] = {
      // The Gateway API's default is 302 (Istio's VirtualService default is 301).
      redirectCode: redirect.statusCode ?? 302,
      ...(redirect.scheme ? { scheme: redirect.scheme } : {}),
      ...(redirect.hostname ? { authority: redirect.hostname } : {}),
      // As istiod: unset, the port is the scheme's default when a scheme is set, else the request's.
      ...(redirect.port !== undefined ? { port: redirect.port } : { derivePort: redirect.scheme ? 'FROM_PROTOCOL_DEFAULT' : 'FROM_REQUEST_PORT' }),
      ...(redirect.path?.type === 'ReplaceFullPath' ? { uri: redirect.path.replaceFullPath } : {}),
      ...(redirect.path?.type === 'ReplacePrefixMatch' ? { replacePrefixMatch: redirect.path.replacePrefixMatch } : {}),
    };
  }
  const retries = retryOf(rule.retry);
  if (retries) spec['retries'] = retries;
  // istiod: backendRequest is the per-try timeout with a retry stanza, else the route timeout
  // (winning over request).
  const request = durationText(rule.timeouts?.request);
  const backendRequest = durationText(rule.timeouts?.backendRequest);
  if (backendRequest && retries) spec['retries'] = { ...retries, perTryTimeout: backendRequest };
  const timeout = retries ? request : (backendRequest ?? request);
  if (timeout) spec['timeout'] = timeout;
  if (!redirect) {
    const backends = (rule.backendRefs ?? []).filter((b) => (b.weight ?? 1) > 0);
    if (backends.length === 0) {
      // The Gateway API: a rule with no backend of weight above zero answers 500.
      spec['directResponse'] = { status: 500 };
    } else {
      spec['route'] = backends.map((b): RouteDestinationSpec => {
        const h = headersOf(b.filters);
        return { destination: destination(b, ns, ctx.clusterDomain), weight: b.weight ?? 1, ...(h ? { headers: h } : {}) };
      });
    }
  }
  return spec as HttpRouteSpec;
}

/**
 * The Gateway API's `retry`, as istiod converts it: connection errors are always retried, plus
 * the listed status codes; attempts default to 2; 0 turns retries off.
 */
function retryOf(retry: GatewayRule['retry']): Record<string, unknown> | undefined {
  if (!retry) return undefined;
  const attempts = retry.attempts ?? 2;
  if (attempts === 0) return { attempts: 0 };
  const retryOn = ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', ...(retry.codes ?? []).map(String)].join(',');
  return { attempts, retryOn, ...(retry.backoff ? { backoff: retry.backoff } : {}) };
}

/** One entry per match of each rule, as istiod splits them. */
function convertRoute(route: GatewayRouteResource, ctx: CompileContext): ConvertedEntry[] {
  const out: ConvertedEntry[] = [];
  const ref = resourceRef(route);
  (route.spec.rules ?? []).forEach((rule, r) => {
    const matches = rule.matches && rule.matches.length > 0 ? rule.matches : [undefined];
    matches.forEach((m, i) => {
      out.push({ spec: convertRule(route, rule, r, m, ctx), resource: ref, path: m ? `spec.rules[${r}].matches[${i}]` : `spec.rules[${r}]` });
    });
  });
  return out;
}

/** A parentRef port narrows every entry to calls on that port. */
function withPort(entries: readonly ConvertedEntry[], port: number | undefined): readonly ConvertedEntry[] {
  if (port === undefined) return entries;
  return entries.map((e) => {
    const matches = e.spec.match && e.spec.match.length > 0 ? e.spec.match.map((m) => ({ ...m, port })) : [{ port }];
    return { ...e, spec: { ...e.spec, match: matches } };
  });
}

function uriRank(m: HttpMatchSpec | undefined): [number, number] {
  const uri = m?.uri;
  if (!uri) return [0, 0];
  if (uri.exact !== undefined) return [3, uri.exact.length];
  if (uri.pathPrefix !== undefined || uri.prefix !== undefined) return [2, (uri.pathPrefix ?? uri.prefix)!.length];
  if (uri.regex !== undefined) return [1, uri.regex.length];
  return [0, 0];
}

/**
 * istiod's sortHTTPRoutes (the Gateway API's precedence): exact over prefix over regex paths,
 * longer first, then a method match, then more header matches, then more query matches; routes
 * with no match last. Stable, so older routes and earlier rules win ties.
 */
function precedence(a: ConvertedEntry, b: ConvertedEntry): number {
  const ma = a.spec.match?.[0];
  const mb = b.spec.match?.[0];
  if (!a.spec.match || a.spec.match.length === 0) return b.spec.match && b.spec.match.length > 0 ? 1 : 0;
  if (!b.spec.match || b.spec.match.length === 0) return -1;
  const [ra, la] = uriRank(ma);
  const [rb, lb] = uriRank(mb);
  if (ra !== rb) return rb - ra;
  if (la !== lb) return lb - la;
  if ((ma?.method === undefined) !== (mb?.method === undefined)) return ma?.method !== undefined ? -1 : 1;
  const ha = Object.keys(ma?.headers ?? {}).length;
  const hb = Object.keys(mb?.headers ?? {}).length;
  if (ha !== hb) return hb - ha;
  return Object.keys(mb?.queryParams ?? {}).length - Object.keys(ma?.queryParams ?? {}).length;
}

/** The VirtualService view of the Gateway API routes for one host, as the route compiler reads it. */
export type ConvertedVirtualService = MeshResource<
  'VirtualService' | GatewayRouteKind,
  {
    readonly hosts: readonly string[];
    readonly http: readonly HttpRouteSpec[];
  }
> & { readonly origin: GatewayOrigin };

interface Attachment {
  readonly route: GatewayRouteResource;
  readonly parentIndex: number;
  readonly port: number | undefined;
}

/**
 * Turns the HTTPRoutes and GRPCRoutes that attach to Services into one VirtualService view per
 * Service host, for this caller. As in Istio (GAMMA), a route in the Service's own namespace
 * (producer route) applies to every caller; a route in another namespace (consumer route) applies
 * only to callers in its namespace, and there it replaces the producer routes for that Service.
 * Conversions are cached per route object, and a host's view is reused while its routes are the same.
 */
export class GatewayRouteConverter {
  private converted = new WeakMap<MeshResource, ConvertedEntry[]>();
  private views = new Map<string, { attachments: readonly Attachment[]; view: ConvertedVirtualService }>();

  convert(resources: readonly MeshResource[], ctx: CompileContext): ConvertedVirtualService[] {
    const routes = sortByAge(resources.filter((r) => r.kind === 'HTTPRoute' || r.kind === 'GRPCRoute') as GatewayRouteResource[]);
    if (routes.length === 0) {
      this.views.clear();
      return [];
    }
    const consumer = new Map<string, Attachment[]>();
    const producer = new Map<string, Attachment[]>();
    for (const route of routes) {
      const ns = route.metadata.namespace;
      (route.spec.parentRefs ?? []).forEach((parent, parentIndex) => {
        if (!isServiceParent(parent)) return;
        const serviceNs = parent.namespace ?? ns;
        const host = serviceHost(parent.name, serviceNs, ctx.clusterDomain);
        const attachment = { route, parentIndex, port: parent.port };
        if (serviceNs === ns) push(producer, host, attachment);
        else if (ns === ctx.namespace) push(consumer, host, attachment);
      });
    }
    const out: ConvertedVirtualService[] = [];
    const views = new Map<string, { attachments: readonly Attachment[]; view: ConvertedVirtualService }>();
    for (const host of new Set([...consumer.keys(), ...producer.keys()])) {
      const isConsumer = consumer.has(host);
      const attachments = (isConsumer ? consumer.get(host) : producer.get(host))!;
      const kept = this.views.get(host);
      const view =
        kept && kept.attachments.length === attachments.length && kept.attachments.every((a, i) => sameAttachment(a, attachments[i]!))
          ? kept.view
          : this.view(host, attachments, ctx);
      views.set(host, { attachments, view });
      out.push(view);
    }
    this.views = views;
    return out;
  }

  private view(host: string, attachments: readonly Attachment[], ctx: CompileContext): ConvertedVirtualService {
    const entries: ConvertedEntry[] = [];
    for (const a of attachments) {
      let converted = this.converted.get(a.route);
      if (!converted) {
        converted = convertRoute(a.route, ctx);
        this.converted.set(a.route, converted);
      }
      entries.push(...withPort(converted, a.port));
    }
    entries.sort(precedence);
    const first = attachments[0]!;
    return {
      apiVersion: first.route.apiVersion,
      kind: first.route.kind,
      metadata: first.route.metadata,
      // Public, as istiod leaves it: which callers see a consumer route was decided above.
      spec: { hosts: [host], http: entries.map((e) => e.spec) },
      document: first.route.document,
      origin: {
        entries: entries.map((e) => ({ resource: e.resource, path: e.path })),
        hostPath: ['spec', 'parentRefs', first.parentIndex],
        source: first.route,
      },
    };
  }
}

function sameAttachment(a: Attachment, b: Attachment): boolean {
  return a.route === b.route && a.parentIndex === b.parentIndex && a.port === b.port;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
