import type { TrafficPolicySpec } from '../snapshot.js';

/** Fields a subset or port-level policy replaces whole (no deep merge), per Istio. */
const SUBSET_FIELDS = ['connectionPool', 'loadBalancer', 'outlierDetection', 'tls', 'tunnel', 'proxyProtocol', 'retryBudget'] as const;
const PORT_FIELDS = ['connectionPool', 'loadBalancer', 'outlierDetection', 'tls'] as const;

interface PortLevel {
  readonly port?: { readonly number?: number };
  readonly [field: string]: unknown;
}

function portLevelFor(policy: TrafficPolicySpec, port: number | undefined): PortLevel | undefined {
  if (port === undefined) return undefined;
  const list = policy.portLevelSettings as readonly PortLevel[] | undefined;
  return list?.find((p) => p.port?.number === port);
}

function applyPortLevel(policy: Record<string, unknown>, level: PortLevel | undefined): void {
  if (!level) return;
  // Port-level settings do not inherit: an omitted field falls back to defaults, not to the
  // destination-level value (Istio's documented behaviour).
  for (const field of PORT_FIELDS) {
    if (level[field] === undefined) delete policy[field];
    else policy[field] = level[field];
  }
}

/**
 * The policy in force for one (subset, port): top level, then its matching port-level settings,
 * then the subset's fields, then the subset's matching port-level settings, each replacing whole
 * sub-messages, as Istio's MergeTrafficPolicy does.
 */
export function mergeTrafficPolicy(
  top: TrafficPolicySpec | undefined,
  subset: TrafficPolicySpec | undefined,
  port: number | undefined,
): TrafficPolicySpec | undefined {
  if (!top && !subset) return undefined;
  const merged: Record<string, unknown> = {};
  if (top) {
    for (const [k, v] of Object.entries(top)) if (k !== 'portLevelSettings') merged[k] = v;
    applyPortLevel(merged, portLevelFor(top, port));
  }
  if (subset) {
    for (const field of SUBSET_FIELDS) if (subset[field] !== undefined) merged[field] = subset[field];
    applyPortLevel(merged, portLevelFor(subset, port));
  }
  return merged;
}
