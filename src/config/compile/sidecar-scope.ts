import { labelsMatch } from '../../discovery/endpoint.js';
import type { ResourceRef } from '../../issue.js';
import type { MeshResource } from '../resource.js';
import { resourceRef } from '../resource.js';
import type { CompileContext } from './context.js';
import { sortByAge } from './context.js';
import { hostMatches } from './hosts.js';

interface SidecarSpec {
  readonly workloadSelector?: { readonly labels?: Readonly<Record<string, string>> };
  readonly egress?: readonly { readonly hosts?: readonly string[] }[];
  readonly outboundTrafficPolicy?: { readonly mode?: 'ALLOW_ANY' | 'REGISTRY_ONLY' };
}

interface EgressHost {
  /** `*` any namespace, otherwise one namespace; `~` never matches. */
  readonly namespace: string;
  readonly host: string;
}

/** What a Sidecar resource lets the caller reach. */
export interface SidecarScope {
  readonly source: ResourceRef | undefined;
  readonly outboundTrafficPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY' | undefined;
  isImported(host: string, namespace: string): boolean;
}

const OPEN: SidecarScope = { source: undefined, outboundTrafficPolicy: undefined, isImported: () => true };

/**
 * Picks the Sidecar that applies to the caller as Istio does: one in the caller's namespace whose
 * workloadSelector matches, else the caller's namespace default (no selector), else the root
 * namespace default.
 */
export function selectSidecar(resources: readonly MeshResource[], ctx: CompileContext): SidecarScope {
  const sidecars = sortByAge(resources.filter((r) => r.kind === 'Sidecar') as MeshResource<'Sidecar', SidecarSpec>[]);
  const own = sidecars.filter((s) => s.metadata.namespace === ctx.namespace);
  const chosen =
    own.find((s) => s.spec.workloadSelector?.labels && labelsMatch(s.spec.workloadSelector.labels, ctx.workloadLabels)) ??
    own.find((s) => !s.spec.workloadSelector) ??
    sidecars.find((s) => s.metadata.namespace === ctx.rootNamespace && !s.spec.workloadSelector);
  if (!chosen) return OPEN;
  const hosts: EgressHost[] = [];
  for (const egress of chosen.spec.egress ?? []) {
    for (const entry of egress.hosts ?? []) {
      const slash = entry.indexOf('/');
      const ns = slash < 0 ? '*' : entry.slice(0, slash);
      const host = (slash < 0 ? entry : entry.slice(slash + 1)).toLowerCase();
      // `.` means the workload's namespace, also for the mesh-wide default in the root namespace.
      hosts.push({ namespace: ns === '.' ? ctx.namespace : ns, host });
    }
  }
  return {
    source: resourceRef(chosen),
    outboundTrafficPolicy: chosen.spec.outboundTrafficPolicy?.mode,
    isImported: (host, namespace) =>
      hosts.some((h) => h.namespace !== '~' && (h.namespace === '*' || h.namespace === namespace) && (h.host === '*' || hostMatches(h.host, host))),
  };
}
