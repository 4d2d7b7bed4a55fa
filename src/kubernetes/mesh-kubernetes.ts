import { systemClock } from '../clock.js';
import { KubernetesSource } from './kubernetes-source.js';
import type { KubernetesDiscoveryNote } from './discovery/kubernetes-endpoint-source.js';
import type { KubeCollectionReport, KubeRuntime } from './api-watcher.js';
import { KubeApiWatcher } from './api-watcher.js';
import type { KubernetesOptions } from './kubernetes-options.js';

// The mesh loads this module only when it uses the Kubernetes API: what it needs from here.
export { KubernetesEndpointSource } from './discovery/kubernetes-endpoint-source.js';

/** What the mesh knows of its Kubernetes watches: `mesh.kubernetesStatus()`. */
export interface KubernetesStatus {
  /** Every open collection (kind and namespace) and its health. */
  readonly collections: readonly KubeCollectionReport[];
  /** Istio groups or kinds the cluster does not serve (CRDs not installed): not an error. */
  readonly unserved: readonly string[];
  /** Why API discovery has not succeeded yet (it is retried with back-off). */
  readonly discoveryError?: Error;
  /** What endpoint discovery cannot see and how it copes (Nodes forbidden...), one per cause. */
  readonly notes: readonly KubernetesDiscoveryNote[];
}

/** The API watcher and, unless turned off, the Istio configuration source over it. */
export async function openKubernetes(
  options: KubernetesOptions,
  namespace: string | undefined,
  rootNamespace: string,
  runtime: KubeRuntime = { clock: systemClock },
): Promise<{ watcher: KubeApiWatcher; source: KubernetesSource | undefined; namespace: string | undefined }> {
  const watcher = await KubeApiWatcher.connect(options, runtime);
  const own = namespace ?? watcher.access.namespace;
  if (options.istioConfig === false) return { watcher, source: undefined, namespace: own };
  const source = new KubernetesSource(watcher, {
    namespaces: [own ?? 'default', rootNamespace, ...(options.namespaces ?? [])],
    ...(options.backoff?.initialMs !== undefined ? { backoffInitialMs: options.backoff.initialMs } : {}),
    ...(options.backoff?.maxMs !== undefined ? { backoffMaxMs: options.backoff.maxMs } : {}),
    ...runtime,
  });
  return { watcher, source, namespace: own };
}

export function kubernetesStatus(
  watcher: KubeApiWatcher,
  source: KubernetesSource | undefined,
  notes: readonly KubernetesDiscoveryNote[] = [],
): KubernetesStatus {
  return {
    collections: watcher.reports(),
    unserved: source?.unserved ?? [],
    notes: [...notes],
    ...(source?.discoveryError ? { discoveryError: source.discoveryError } : {}),
  };
}
