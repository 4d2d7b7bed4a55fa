import { labelsMatch } from '../../../discovery/endpoint.js';
import type { CompileContext, IssueSink } from '../context.js';
import { locate, sortByAge } from '../context.js';
import { bySpecificity, hostMatches, qualifyHost } from '../hosts.js';
import { isExportedTo } from '../visibility.js';
import type { MeshResource } from '../../resource.js';
import { resourceRef } from '../../resource.js';
import type { IstioResource, RateLimit } from '../../schema/index.js';
import { parseDuration } from '../../../duration.js';
import type { StringMatcher } from '../../../match/string-match.js';
import type { RouteTable } from '../../../routing/route-table.js';
import { compileStringMatch } from '../../../match/string-match.js';
import { DEFAULT_MAX_KEYS } from '../../../resilience/rate-limit/local-limiter.js';
import type { BucketKeySpec, CompiledRateLimit, RateLimitRule, RateLimitTarget } from '../../../resilience/rate-limit/rate-limit-spec.js';
import { GRPC_UNAVAILABLE } from './local-rate-limit-config.js';
import type { Report } from './proto-json.js';

type RateLimitPolicyResource = IstioResource<'RateLimitPolicy'>;

/** A RateLimitPolicy limit with its `match` compiled: it selects itself when every condition holds. */
class PolicyRule implements RateLimitRule {
  private readonly routes: ReadonlySet<string> | undefined;
  private readonly subsets: ReadonlySet<string> | undefined;
  private readonly ports: ReadonlySet<number> | undefined;
  private readonly methods: ReadonlySet<string> | undefined;
  private readonly headers: readonly { readonly name: string; readonly matcher: StringMatcher }[];

  constructor(
    readonly limit: CompiledRateLimit,
    spec: RateLimit['match'],
  ) {
    const set = <T>(list: readonly T[] | undefined): ReadonlySet<T> | undefined => (list && list.length > 0 ? new Set(list) : undefined);
    this.routes = set(spec?.routes);
    this.subsets = set(spec?.subsets);
    this.ports = set(spec?.ports);
    this.methods = set(spec?.methods);
    this.headers = Object.entries(spec?.headers ?? {}).map(([name, m]) => ({ name: name.toLowerCase(), matcher: compileStringMatch(m) }));
  }

  select(t: RateLimitTarget): CompiledRateLimit | undefined {
    if (this.routes && (t.routeName === undefined || !this.routes.has(t.routeName))) return undefined;
    if (this.subsets && (t.subset === undefined || !this.subsets.has(t.subset))) return undefined;
    if (this.ports && !this.ports.has(t.port)) return undefined;
    if (this.methods && !this.methods.has(t.request.method)) return undefined;
    const headers = this.headers;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i]!;
      const value = t.request.header(h.name);
      if (value === undefined || !h.matcher.test(value)) return undefined;
    }
    return this.limit;
  }
}

function keyOf(spec: RateLimit['key']): BucketKeySpec {
  if (spec?.header !== undefined) return { kind: 'header', name: spec.header };
  if (spec?.queryParameter !== undefined) return { kind: 'query', name: spec.queryParameter };
  return { kind: 'none' };
}

function compileLimit(resource: RateLimitPolicyResource, spec: RateLimit, index: number): PolicyRule {
  const ref = resourceRef(resource);
  const bucket = {
    maxTokens: spec.tokenBucket.maxTokens,
    tokensPerFill: spec.tokenBucket.tokensPerFill ?? 1,
    // Validated already: a duration of at least 1 ms.
    fillIntervalMs: parseDuration(spec.tokenBucket.fillInterval) ?? 1000,
  };
  const key = keyOf(spec.key);
  const scope = spec.scope ?? 'LOCAL';
  const label = spec.name ?? `limits[${index}]`;
  const keyText = key.kind === 'header' || key.kind === 'query' ? `${key.kind}:${key.name}` : key.kind;
  const limit: CompiledRateLimit = {
    id: `RateLimitPolicy/${ref.namespace}/${ref.name}#${label}|${bucket.maxTokens}/${bucket.tokensPerFill}/${bucket.fillIntervalMs}|${scope}|${keyText}`,
    name: `${ref.namespace}/${ref.name}${spec.name ? `/${spec.name}` : ` limits[${index}]`}`,
    source: ref,
    path: `spec.limits[${index}]`,
    bucket,
    scope,
    key,
    maxKeys: spec.key?.maxKeys ?? DEFAULT_MAX_KEYS,
    enabled: 1,
    enforced: 1,
    status: 429,
    grpcStatus: GRPC_UNAVAILABLE,
    replyHeaders: [],
  };
  return new PolicyRule(limit, spec.match);
}

interface Candidate {
  readonly host: string;
  readonly rules: readonly PolicyRule[];
}

/**
 * The RateLimitPolicies visible to this caller, looked up as Istio looks up a DestinationRule:
 * the caller's namespace, then the destination service's, then the root namespace; in the first
 * namespace with a policy for the host, the policies of its most specific host pattern apply,
 * all of them (their limits add up, oldest policy first).
 */
export class RateLimitPolicyIndex {
  private readonly byNamespace = new Map<string, { exact: Map<string, PolicyRule[]>; wildcards: Candidate[] }>();
  /** Every limit of the visible policies. */
  readonly limits: readonly CompiledRateLimit[];
  private readonly visible: { readonly resource: RateLimitPolicyResource; readonly host: string }[] = [];

  constructor(
    resources: readonly MeshResource[],
    private readonly ctx: CompileContext,
  ) {
    const policies = sortByAge(resources.filter((r) => r.kind === 'RateLimitPolicy') as RateLimitPolicyResource[]);
    const limits: CompiledRateLimit[] = [];
    for (const resource of policies) {
      const ns = resource.metadata.namespace;
      if (!isExportedTo(resource.spec.exportTo, ns, ctx.namespace)) continue;
      const selector = resource.spec.workloadSelector?.matchLabels;
      // As for a DestinationRule, a workloadSelector only selects workloads of the policy's namespace.
      if (selector && (ns !== ctx.namespace || !labelsMatch(selector, ctx.workloadLabels))) continue;
      const host = qualifyHost(resource.spec.host, ns, ctx.clusterDomain);
      this.visible.push({ resource, host });
      const rules = resource.spec.limits.map((l, i) => compileLimit(resource, l, i));
      limits.push(...rules.map((r) => r.limit));
      let index = this.byNamespace.get(ns);
      if (!index) this.byNamespace.set(ns, (index = { exact: new Map(), wildcards: [] }));
      if (host.startsWith('*')) {
        const same = index.wildcards.find((c) => c.host === host);
        if (same) (same.rules as PolicyRule[]).push(...rules);
        else index.wildcards.push({ host, rules: [...rules] });
      } else {
        index.exact.set(host, [...(index.exact.get(host) ?? []), ...rules]);
      }
    }
    for (const index of this.byNamespace.values()) index.wildcards.sort((a, b) => bySpecificity(a.host, b.host));
    this.limits = limits;
  }

  /**
   * Warns about `match.routes` entries that name no http route of the host's VirtualService: such
   * a limit never applies to them (Istio would accept the policy the same way).
   */
  analyze(routeTable: (host: string) => RouteTable | undefined, sink: IssueSink): void {
    for (const { resource, host } of this.visible) {
      if (host.startsWith('*')) continue;
      const table = routeTable(host);
      const names = new Set(table ? table.routes.map((r) => r.name ?? '') : ['default']);
      resource.spec.limits.forEach((limit, i) => {
        (limit.match?.routes ?? []).forEach((name, j) => {
          if (names.has(name)) return;
          const known = table ? [...names].filter((n) => n !== '') : [];
          sink.warn({
            code: 'unknown-route',
            message: table
              ? `route "${name}" is not an http route of VirtualService ${table.resource.namespace}/${table.resource.name} for host "${host}" (routes: ${known.join(', ') || 'none named'}); the limit never applies to it`
              : `no VirtualService routes host "${host}", so its only route is "default"; the limit never applies to route "${name}"`,
            resource: resourceRef(resource),
            path: `spec.limits[${i}].match.routes[${j}]`,
            location: locate(resource, ['spec', 'limits', i, 'match', 'routes', j]),
          });
        });
      });
    }
  }

  /** The rules for calls to `host`; `serviceNamespace` is where the service lives, when known. */
  lookup(host: string, serviceNamespace: string | undefined): readonly RateLimitRule[] {
    const order = [this.ctx.namespace];
    if (serviceNamespace && serviceNamespace !== this.ctx.namespace) order.push(serviceNamespace);
    if (!order.includes(this.ctx.rootNamespace)) order.push(this.ctx.rootNamespace);
    for (const ns of order) {
      const index = this.byNamespace.get(ns);
      if (!index) continue;
      const exact = index.exact.get(host);
      if (exact) return exact;
      const wildcard = index.wildcards.find((c) => hostMatches(c.host, host));
      if (wildcard) return wildcard.rules;
    }
    return [];
  }
}

/** Checks a RateLimitPolicy beyond its schema: limit names are unique within it. */
export function checkRateLimitPolicy(spec: unknown, report: Report): void {
  const limits = (spec as { limits?: unknown } | null)?.limits;
  if (!Array.isArray(limits)) return;
  const seen = new Set<string>();
  limits.forEach((limit: unknown, i) => {
    const name = (limit as { name?: unknown } | null)?.name;
    if (typeof name !== 'string') return;
    if (seen.has(name)) report('error', 'duplicate', `limit name "${name}" is used twice; names must be unique within a policy`, ['spec', 'limits', i, 'name']);
    seen.add(name);
  });
}
