import type { ConfigIssue, SourceLocation } from '../../issue.js';
import type { MeshResource } from '../resource.js';

/** Who the snapshot is for, and the mesh-wide settings that change how resources read. */
export interface CompileContext {
  /** The caller's namespace. */
  readonly namespace: string;
  /** Istio's config root namespace for mesh-wide resources (`istio-system`). */
  readonly rootNamespace: string;
  /** Kubernetes cluster domain (`cluster.local`). */
  readonly clusterDomain: string;
  /** The caller's own workload labels (sourceLabels, workloadSelector). */
  readonly workloadLabels: Readonly<Record<string, string>>;
  /**
   * Read and check the files a DestinationRule `tls` names (default true). `sidecarless validate`
   * and `explain` run elsewhere than the workload, where those paths do not exist.
   */
  readonly tlsFiles?: boolean;
  /**
   * Whether a DestinationRule's `sidecarless.io/load-balancer` must name a policy registered in
   * this process (default true). False for `sidecarless validate` and `explain`, which run without
   * the application's own policies: a name they do not know is taken on trust there.
   */
  readonly registeredBalancersOnly?: boolean;
  /** The mesh's trust domain then its aliases (AuthorizationPolicy principals). Default none. */
  readonly trustDomains?: readonly string[];
  /**
   * Extension providers a CUSTOM AuthorizationPolicy may name (createMesh options); undefined:
   * unknown here (`sidecarless validate`), so not checked.
   */
  readonly authzProviders?: ReadonlySet<string>;
}

/**
 * Istio settles conflicts by age: oldest first (creationTimestamp), then by name and namespace.
 * Resources from files carry no timestamp; they keep the order they were read in, which is the
 * order `kubectl apply` would have created them.
 */
export function sortByAge<T extends MeshResource>(resources: readonly T[]): T[] {
  return resources
    .map((resource, index) => ({ resource, index }))
    .sort((a, b) => {
      const ta = a.resource.metadata.creationTimestamp ?? '';
      const tb = b.resource.metadata.creationTimestamp ?? '';
      if (ta !== tb && ta !== '' && tb !== '') return Date.parse(ta) - Date.parse(tb);
      return a.index - b.index;
    })
    .map((e) => e.resource);
}

/** Collects findings during a compile. */
export class IssueSink {
  readonly issues: ConfigIssue[] = [];
  warn(issue: Omit<ConfigIssue, 'severity'>): void {
    this.issues.push({ severity: 'warning', ...issue });
  }
  error(issue: Omit<ConfigIssue, 'severity'>): void {
    this.issues.push({ severity: 'error', ...issue });
  }
}

/**
 * Where a field of a resource is, for findings raised after validation. Finding a line in a file
 * means parsing the file again, and most findings are warnings nobody may read (10,000
 * VirtualServices claiming one host make 9,999 of them): the line and column are worked out when
 * first read.
 */
export function locate(resource: MeshResource, path: readonly (string | number)[]): SourceLocation {
  const document = resource.document;
  const find = document.locate?.bind(document);
  if (!find) return document.location;
  let found: SourceLocation | undefined;
  const get = (): SourceLocation => (found ??= find(path) ?? document.location);
  const location = {};
  for (const key of ['file', 'line', 'column'] as const) {
    Object.defineProperty(location, key, { enumerable: true, get: () => get()[key] });
  }
  return location;
}
