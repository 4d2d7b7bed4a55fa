import { labelsMatch } from '../../../discovery/endpoint.js';
import type { CompileContext, IssueSink } from '../context.js';
import { locate, sortByAge } from '../context.js';
import type { MeshResource } from '../../resource.js';
import { resourceRef } from '../../resource.js';
import type { IstioResource } from '../../schema/index.js';
import { DEFAULT_MAX_KEYS } from '../../../resilience/rate-limit/local-limiter.js';
import type { BucketKeySpec, CompiledRateLimit, RateLimitRule, RateLimitTarget } from '../../../resilience/rate-limit/rate-limit-spec.js';
import type { RateLimitPatch, RouteConfigMatch } from './envoy-filter-patches.js';
import { readRateLimitPatches } from './envoy-filter-patches.js';
import type { LocalRateLimitConfig } from './local-rate-limit-config.js';

type EnvoyFilterResource = IstioResource<'EnvoyFilter'>;

/** What the EnvoyFilters that select this workload add. */
export interface EnvoyFilterLimits {
  /** One rule per local rate-limit filter on the outbound listeners, in filter-chain order. */
  readonly rules: readonly RateLimitRule[];
  /** Every limit those rules can select. */
  readonly limits: readonly CompiledRateLimit[];
  /** SIDECAR_INBOUND (or ANY) local rate limits, for the inbound side. */
  readonly inbound: readonly CompiledRateLimit[];
  /** One rule per local rate-limit filter on the inbound listener, in filter-chain order. */
  readonly inboundRules: readonly RateLimitRule[];
}

interface Override {
  readonly match: RouteConfigMatch;
  readonly limit: CompiledRateLimit;
}

/**
 * One local rate-limit filter on the outbound listeners. Envoy resolves the most specific
 * configuration for each request (route, then virtual host, then the filter's own), and each
 * configuration has its own bucket: per listener (port) for the filter's, per virtual host or
 * per route for the others.
 */
class FilterRule implements RateLimitRule {
  constructor(
    private readonly port: number | undefined,
    private readonly own: CompiledRateLimit | undefined,
    private readonly routes: readonly Override[],
    private readonly vhosts: readonly Override[],
  ) {}

  select(t: RateLimitTarget): CompiledRateLimit | undefined {
    const port = t.request.port;
    if (this.port !== undefined && this.port !== port) return undefined;
    for (const o of this.routes) if (matches(o.match, t, port)) return o.limit;
    for (const o of this.vhosts) if (matches(o.match, t, port)) return o.limit;
    return this.own;
  }
}

function matches(m: RouteConfigMatch, t: RateLimitTarget, port: number): boolean {
  if (m.port !== undefined && m.port !== port) return false;
  if (m.vhost !== undefined && m.vhost !== (t.virtualHost ?? `${t.serviceHost}:${port}`)) return false;
  if (m.route !== undefined && m.route !== t.routeName) return false;
  return true;
}

/** Istio's scoping: root-namespace EnvoyFilters apply to every workload, others to their own namespace's. */
function appliesTo(resource: EnvoyFilterResource, ctx: CompileContext): boolean {
  const ns = resource.metadata.namespace;
  if (ns !== ctx.rootNamespace && ns !== ctx.namespace) return false;
  // targetRefs attach the filter to gateways and waypoints, never to a sidecar.
  if (resource.spec.targetRefs && resource.spec.targetRefs.length > 0) return false;
  return labelsMatch(resource.spec.workloadSelector?.labels, ctx.workloadLabels);
}

function limitOf(resource: EnvoyFilterResource, patch: RateLimitPatch, config: LocalRateLimitConfig, key: BucketKeySpec): CompiledRateLimit | undefined {
  const bucket = config.bucket;
  if (!bucket) return undefined;
  const ref = resourceRef(resource);
  const path = `spec.configPatches[${patch.index}]`;
  return {
    id: `EnvoyFilter/${ref.namespace}/${ref.name}#${patch.index}/${patch.filterName}|${bucket.maxTokens}/${bucket.tokensPerFill}/${bucket.fillIntervalMs}|${key.kind}`,
    name: `${ref.namespace}/${ref.name} ${path} (${config.statPrefix})`,
    source: ref,
    path,
    bucket,
    scope: 'LOCAL',
    key,
    maxKeys: DEFAULT_MAX_KEYS,
    enabled: config.enabled,
    enforced: config.enforced,
    status: config.status,
    grpcStatus: config.grpcStatus,
    replyHeaders: config.replyHeaders,
  };
}

const PORT_KEY: BucketKeySpec = { kind: 'port' };
const NO_KEY: BucketKeySpec = { kind: 'none' };
const VHOST_KEY: BucketKeySpec = { kind: 'vhost' };
const ROUTE_KEY: BucketKeySpec = { kind: 'route' };

/**
 * Compiles the local rate limits of the EnvoyFilters that select this workload, in the order
 * Istio applies them (root namespace first, then the workload's; by priority, then age).
 */
export function compileEnvoyFilters(resources: readonly MeshResource[], ctx: CompileContext, sink: IssueSink): EnvoyFilterLimits {
  const filters = sortByAge(resources.filter((r) => r.kind === 'EnvoyFilter') as EnvoyFilterResource[])
    .filter((r) => appliesTo(r, ctx))
    .map((resource, order) => ({ resource, order }))
    .sort((a, b) => {
      const rootA = a.resource.metadata.namespace === ctx.rootNamespace ? 0 : 1;
      const rootB = b.resource.metadata.namespace === ctx.rootNamespace ? 0 : 1;
      return rootA - rootB || (a.resource.spec.priority ?? 0) - (b.resource.spec.priority ?? 0) || a.order - b.order;
    })
    .map((e) => e.resource);

  // Findings were reported when the resource was validated; here only the patches are wanted.
  const silent = (): void => undefined;
  const outboundFilters: { resource: EnvoyFilterResource; patch: Extract<RateLimitPatch, { kind: 'filter' }> }[] = [];
  const overrides: { resource: EnvoyFilterResource; patch: Exclude<RateLimitPatch, { kind: 'filter' }> }[] = [];
  const inboundFilters: typeof outboundFilters = [];
  const inboundOverrides: typeof overrides = [];
  for (const resource of filters) {
    for (const patch of readRateLimitPatches(resource.spec, silent)) {
      if (patch.context !== 'outbound') {
        if (patch.kind === 'filter') inboundFilters.push({ resource, patch });
        else inboundOverrides.push({ resource, patch });
      }
      if (patch.context === 'inbound') continue;
      if (patch.kind === 'filter') outboundFilters.push({ resource, patch });
      else overrides.push({ resource, patch });
    }
  }
  const inbound: CompiledRateLimit[] = [];
  const { rules: inboundRules, unused: inboundUnused } = buildRules(inboundFilters, inboundOverrides, inbound);

  const limits: CompiledRateLimit[] = [];
  const outbound = buildRules(outboundFilters, overrides, limits);
  const warn = (o: OverridePatch, direction: string, contexts: string): void =>
    sink.warn({
      code: 'no-effect',
      message: `this route configuration of filter '${o.patch.filterName}' has no effect: no EnvoyFilter that applies to this workload inserts that HTTP filter for ${direction} traffic (an HTTP_FILTER patch with context ${contexts} or ANY)`,
      resource: resourceRef(o.resource),
      path: `spec.configPatches[${o.patch.index}]`,
      location: locate(o.resource, ['spec', 'configPatches', o.patch.index]),
    });
  for (const o of outbound.unused) warn(o, 'outbound', 'SIDECAR_OUTBOUND');
  for (const o of inboundUnused) if (o.patch.context === 'inbound') warn(o, 'inbound', 'SIDECAR_INBOUND');
  return { rules: outbound.rules, limits, inbound, inboundRules };
}

type FilterPatch = { resource: EnvoyFilterResource; patch: Extract<RateLimitPatch, { kind: 'filter' }> };
type OverridePatch = { resource: EnvoyFilterResource; patch: Exclude<RateLimitPatch, { kind: 'filter' }> };

/** One rule per filter, with the route and virtual-host configurations of that filter's name; `limits` collects theirs. */
function buildRules(
  filters: readonly FilterPatch[],
  overrides: readonly OverridePatch[],
  limits: CompiledRateLimit[],
): { rules: RateLimitRule[]; unused: OverridePatch[] } {
  const overrideLimits = overrides.map((o) => ({
    ...o,
    limit: limitOf(o.resource, o.patch, o.patch.config, o.patch.kind === 'route' ? ROUTE_KEY : VHOST_KEY),
  }));
  const used = new Set<(typeof overrideLimits)[number]>();
  const rules = filters.map(({ resource, patch }) => {
    const own = limitOf(resource, patch, patch.config, patch.port === undefined ? PORT_KEY : NO_KEY);
    if (own) limits.push(own);
    const mine = overrideLimits.filter((o) => o.patch.filterName === patch.filterName && o.limit);
    for (const o of mine) used.add(o);
    const pick = (kind: 'route' | 'vhost'): Override[] => mine.filter((o) => o.patch.kind === kind).map((o) => ({ match: o.patch.match, limit: o.limit! }));
    return new FilterRule(patch.port, own, pick('route'), pick('vhost'));
  });
  const unused: OverridePatch[] = [];
  for (const o of overrideLimits) {
    if (used.has(o)) {
      if (!limits.includes(o.limit!)) limits.push(o.limit!);
    } else {
      unused.push(o);
    }
  }
  return { rules, unused };
}
