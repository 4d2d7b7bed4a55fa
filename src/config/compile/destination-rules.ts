import { labelsMatch } from '../../discovery/endpoint.js';
import type { MeshResource } from '../resource.js';
import { resourceRef } from '../resource.js';
import type { EffectiveDestinationRule, SubsetDef, TrafficPolicySpec } from '../snapshot.js';
import type { CompileContext, IssueSink } from './context.js';
import { locate, sortByAge } from './context.js';
import { bySpecificity, hostMatches, qualifyHost } from './hosts.js';
import { checkTrafficPolicies } from './traffic-policy-checks.js';
import { UpstreamTlsTable } from '../../security/destination-rule-tls.js';
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
  /** Per namespace: exact hosts → candidates, and wildcard candidates most specific first. */
  private readonly indexed = new Map<string, { exact: Map<string, Candidate[]>; wildcards: Candidate[] }>();
  private readonly cache = new Map<string, EffectiveDestinationRule | null>();
  /** The `tls` blocks of the rules this caller sees, compiled (files read and checked) once here. */
  readonly tls = new UpstreamTlsTable();

  constructor(
    resources: readonly MeshResource[],
    private readonly ctx: CompileContext,
    private readonly sink: IssueSink,
  ) {
    const rules = sortByAge(resources.filter((r) => r.kind === 'DestinationRule') as DestinationRuleResource[]);
    for (const resource of rules) checkTrafficPolicies(resource, sink);
    for (const resource of rules) {
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
      this.reportDuplicates(ns, list);
      const exact = new Map<string, Candidate[]>();
      const wildcards: Candidate[] = [];
      for (const c of list) {
        if (c.host.startsWith('*')) wildcards.push(c);
        else exact.set(c.host, [...(exact.get(c.host) ?? []), c]);
      }
      wildcards.sort((a, b) => bySpecificity(a.host, b.host));
      this.indexed.set(ns, { exact, wildcards });
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
    const index = this.indexed.get(ns);
    if (!index) return undefined;
    let sameHost = index.exact.get(host);
    if (!sameHost) {
      const first = index.wildcards.find((c) => hostMatches(c.host, host));
      if (!first) return undefined;
      sameHost = index.wildcards.filter((c) => c.host === first.host);
    }
    const best = sameHost[0]!.host;
    const selected = sameHost.filter((c) => c.resource.spec.workloadSelector);
    // A selector-matched rule applies alone; rules without selectors are merged.
    return merge(best, selected.length > 0 ? selected.slice(0, 1) : sameHost);
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
        const policyNote = first.spec.trafficPolicy && r.spec.trafficPolicy
          ? `; its top-level trafficPolicy is ignored (${first.metadata.name}'s applies)` : '';
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
