import { labelsMatch } from '../../discovery/endpoint.js';
import type { ConfigIssue } from '../../issue.js';
import type { MeshResource } from '../resource.js';
import { RecentCache } from '../recent-cache.js';
import { resourceRef } from '../resource.js';
import type { Steps } from '../slices.js';
import { every } from '../slices.js';
import type { EffectiveDestinationRule, SubsetDef, TrafficPolicySpec } from '../snapshot.js';
import type { CompileContext } from './context.js';
import { IssueSink, locate, sortByAge } from './context.js';
import { HostTable, qualifyHost } from './hosts.js';
import { checkTrafficPolicies } from './traffic-policy-checks.js';
import { UpstreamTlsTable } from './security/destination-rule-tls.js';
import { isExportedTo } from './visibility.js';

interface SubsetSpec {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly trafficPolicy?: TrafficPolicySpec;
}

interface DestinationRuleSpec {
  readonly host: string;
  readonly trafficPolicy?: TrafficPolicySpec;
  readonly subsets?: readonly SubsetSpec[];
  readonly exportTo?: readonly string[];
  readonly workloadSelector?: { readonly matchLabels?: Readonly<Record<string, string>> };
}

type DestinationRuleResource = MeshResource<'DestinationRule', DestinationRuleSpec>;

interface Candidate {
  readonly resource: DestinationRuleResource;
  readonly host: string;
}

/**
 * DestinationRules as the caller sees them. Lookup follows Istio's order: the caller's namespace,
 * then the service's namespace, then the root namespace; within a namespace the most specific
 * host wins, a rule whose workloadSelector matches the caller beats one without, and rules for the
 * same host without selectors are merged (oldest first: its top-level policy wins, later subsets
 * are added unless their name is taken).
 */
export class DestinationRuleIndex {
  private readonly byNamespace = new Map<string, Candidate[]>();
  /** Per namespace: host (or wildcard pattern) → the rules for it, oldest first. */
  private readonly indexed = new Map<string, HostTable<Candidate[]>>();
  private readonly cache = new Map<string, EffectiveDestinationRule | null>();
  /** The `tls` blocks of the rules this caller sees, compiled (files read and checked) once here. */
  readonly tls = new UpstreamTlsTable();

  /** Builds the index in steps (one per rule), so that thousands of rules compile in slices. */
  static *build(
    resources: readonly MeshResource[],
    ctx: CompileContext,
    sink: IssueSink,
    kept: DestinationRuleCache = new DestinationRuleCache(),
  ): Steps<DestinationRuleIndex> {
    const index = new DestinationRuleIndex(ctx, sink, kept);
    yield* index.add(resources);
    return index;
  }

  private constructor(
    private readonly ctx: CompileContext,
    private readonly sink: IssueSink,
    private readonly kept: DestinationRuleCache,
  ) {}

  private *add(resources: readonly MeshResource[]): Steps<void> {
    const { ctx, sink } = this;
    const rules = sortByAge(resources.filter((r) => r.kind === 'DestinationRule') as DestinationRuleResource[]);
    yield;
    let pace = every(64);
    for (const resource of rules) {
      if (pace()) yield;
      this.kept.check(resource, sink, ctx);
    }
    this.kept.passed();
    pace = every(16);
    for (const resource of rules) {
      if (pace()) yield;
      const ns = resource.metadata.namespace;
      if (!isExportedTo(resource.spec.exportTo, ns, ctx.namespace)) continue;
      const selector = resource.spec.workloadSelector?.matchLabels;
      // A workloadSelector only selects workloads in the rule's own namespace.
      if (selector && (ns !== ctx.namespace || !labelsMatch(selector, ctx.workloadLabels))) continue;
      // Only rules this caller sees: another workload's rule may name files only its pods mount.
      this.tls.add(resource, sink, ctx.tlsFiles === false ? { readFiles: false } : {});
      const host = qualifyHost(resource.spec.host, ns, ctx.clusterDomain);
      let list = this.byNamespace.get(ns);
      if (!list) this.byNamespace.set(ns, (list = []));
      list.push({ resource, host });
    }
    for (const [ns, list] of this.byNamespace) {
      yield;
      this.reportDuplicates(ns, list);
      const table = new HostTable<Candidate[]>();
      for (const c of list) {
        const same = table.getPattern(c.host);
        if (same) same.push(c);
        else table.set(c.host, [c]);
      }
      this.indexed.set(ns, table);
    }
  }

  /** The rule in force for `host`; `serviceNamespace` is where the service lives, when known. */
  lookup(host: string, serviceNamespace?: string): EffectiveDestinationRule | undefined {
    const key = `${host}|${serviceNamespace ?? ''}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const order = [this.ctx.namespace];
    if (serviceNamespace && serviceNamespace !== this.ctx.namespace) order.push(serviceNamespace);
    if (!order.includes(this.ctx.rootNamespace)) order.push(this.ctx.rootNamespace);
    let found: EffectiveDestinationRule | undefined;
    for (const ns of order) {
      found = this.inNamespace(ns, host);
      if (found) break;
    }
    this.cache.set(key, found ?? null);
    return found;
  }

  private inNamespace(ns: string, host: string): EffectiveDestinationRule | undefined {
    // The exact host, else the most specific wildcard covering it.
    const sameHost = this.indexed.get(ns)?.lookup(host);
    if (!sameHost) return undefined;
    const best = sameHost[0]!.host;
    const selected = sameHost.filter((c) => c.resource.spec.workloadSelector);
    // A selector-matched rule applies alone; rules without selectors are merged.
    return this.kept.merge(best, selected.length > 0 ? selected.slice(0, 1) : sameHost);
  }

  /** Warn once per namespace about merged rules and subsets dropped by the merge. */
  private reportDuplicates(ns: string, list: readonly Candidate[]): void {
    const byHost = new Map<string, Candidate[]>();
    for (const c of list) {
      if (c.resource.spec.workloadSelector) continue;
      const group = byHost.get(c.host) ?? [];
      group.push(c);
      byHost.set(c.host, group);
    }
    for (const c of list) {
      const seen = new Set<string>();
      c.resource.spec.subsets?.forEach((s, i) => {
        if (seen.has(s.name)) {
          this.sink.warn({
            code: 'duplicate-subset',
            message: `subset "${s.name}" is defined more than once in this DestinationRule; the first definition is used`,
            resource: resourceRef(c.resource),
            path: `spec.subsets[${i}].name`,
            location: locate(c.resource, ['spec', 'subsets', i, 'name']),
          });
        }
        seen.add(s.name);
      });
    }
    for (const [host, group] of byHost) {
      if (group.length < 2) continue;
      const first = group[0]!.resource;
      const taken = new Map<string, DestinationRuleResource>();
      for (const s of first.spec.subsets ?? []) taken.set(s.name, first);
      for (const c of group.slice(1)) {
        const r = c.resource;
        const policyNote =
          first.spec.trafficPolicy && r.spec.trafficPolicy ? `; its top-level trafficPolicy is ignored (${first.metadata.name}'s applies)` : '';
        this.sink.warn({
          code: 'conflicting-destination-rule',
          message: `DestinationRules ${first.metadata.name} and ${r.metadata.name} in namespace ${ns} both apply to host "${host}"; they are merged, oldest first${policyNote}`,
          resource: resourceRef(r),
          path: 'spec.host',
          location: locate(r, ['spec', 'host']),
        });
        r.spec.subsets?.forEach((s, i) => {
          const owner = taken.get(s.name);
          if (owner && owner !== r) {
            this.sink.warn({
              code: 'duplicate-subset',
              message: `subset "${s.name}" for host "${host}" is already defined by DestinationRule ${owner.metadata.namespace}/${owner.metadata.name}; this one is ignored`,
              resource: resourceRef(r),
              path: `spec.subsets[${i}].name`,
              location: locate(r, ['spec', 'subsets', i, 'name']),
            });
          } else taken.set(s.name, r);
        });
      }
    }
  }
}

/**
 * What a DestinationRule index can take over from the one before it: istiod's checks of a rule's
 * traffic policies (they depend on the rule alone), and the rule in force for a host while the
 * rules merged for it are the same. A change to one rule then costs that rule, not all of them.
 */
export class DestinationRuleCache {
  private readonly issues = new RecentCache<MeshResource, readonly ConfigIssue[]>();
  /** By the oldest rule of a merge: the rules merged and the result. */
  private readonly merged = new RecentCache<MeshResource, { host: string; group: readonly Candidate[]; rule: EffectiveDestinationRule }>();

  /** A new index is being built: checks and merges of rules that are gone are let go. */
  passed(): void {
    this.issues.passed();
    this.merged.passed();
  }

  check(resource: MeshResource, sink: IssueSink, ctx: CompileContext): void {
    let found = this.issues.get(resource);
    if (!found) {
      const own = new IssueSink();
      checkTrafficPolicies(resource, own, { registeredBalancersOnly: ctx.registeredBalancersOnly ?? true });
      this.issues.set(resource, (found = own.issues));
    }
    sink.issues.push(...found);
  }

  merge(host: string, group: readonly Candidate[]): EffectiveDestinationRule {
    const first = group[0]!.resource;
    const kept = this.merged.get(first);
    if (kept && kept.host === host && kept.group.length === group.length && kept.group.every((c, i) => c.resource === group[i]!.resource)) {
      return kept.rule;
    }
    const rule = merge(host, group);
    this.merged.set(first, { host, group, rule });
    return rule;
  }
}

function merge(host: string, group: readonly Candidate[]): EffectiveDestinationRule {
  let trafficPolicy: TrafficPolicySpec | undefined;
  const subsets = new Map<string, SubsetDef>();
  for (const { resource } of group) {
    trafficPolicy ??= resource.spec.trafficPolicy;
    for (const s of resource.spec.subsets ?? []) {
      if (subsets.has(s.name)) continue;
      subsets.set(s.name, { name: s.name, labels: s.labels ?? {}, trafficPolicy: s.trafficPolicy, source: resourceRef(resource) });
    }
  }
  return {
    host,
    sources: group.map((c) => resourceRef(c.resource)),
    annotations: group[0]?.resource.metadata.annotations ?? {},
    trafficPolicy,
    subsets,
  };
}
