import type { DestinationSpec } from './route-table.js';

/** One mirror target of a route, host qualified, percentage as a fraction. */
export interface CompiledMirror {
  /** Fully qualified service host. */
  readonly host: string;
  readonly subset: string | undefined;
  /** Unset: the port the caller addressed (the service's only port when it has one). */
  readonly port: number | undefined;
  /** Fraction in (0, 1] of requests copied to this target. */
  readonly fraction: number;
}

interface PercentSpec {
  readonly value?: number;
}

/** The mirror fields of Istio's HTTPRoute. */
export interface MirrorSpecView {
  readonly mirror?: DestinationSpec;
  readonly mirrorPercentage?: PercentSpec;
  readonly mirrorPercent?: number | null;
  readonly mirror_percent?: number | null;
  readonly mirrors?: readonly { readonly destination?: DestinationSpec; readonly percentage?: PercentSpec }[];
}

function fraction(percent: number): number {
  return Math.min(100, Math.max(0, percent)) / 100;
}

/**
 * `mirror` (with `mirrorPercentage`, else the deprecated integer `mirrorPercent`) and `mirrors[]`,
 * as istiod translates them to Envoy's request_mirror_policies: an unset percentage mirrors every
 * request, an explicit 0 mirrors none (the policy is dropped), and `mirror` comes before the
 * `mirrors` entries.
 */
export function compileMirrors(spec: MirrorSpecView, qualify: (host: string) => string): readonly CompiledMirror[] {
  const out: CompiledMirror[] = [];
  const add = (destination: DestinationSpec | undefined, share: number): void => {
    if (!destination?.host || share <= 0) return;
    out.push({ host: qualify(destination.host), subset: destination.subset, port: destination.port?.number, fraction: share });
  };
  if (spec.mirror) {
    const legacy = spec.mirrorPercent ?? spec.mirror_percent;
    const share =
      spec.mirrorPercentage !== undefined ? fraction(spec.mirrorPercentage.value ?? 0) : legacy !== undefined && legacy !== null ? fraction(legacy) : 1;
    add(spec.mirror, share);
  }
  for (const entry of spec.mirrors ?? []) add(entry.destination, entry.percentage !== undefined ? fraction(entry.percentage.value ?? 0) : 1);
  return out;
}
