import type { MeshClock } from '../clock.js';
import { systemClock } from '../clock.js';
import { KubernetesSource } from '../config/sources/kubernetes-source.js';
import type { KubernetesDiscoveryNote } from '../discovery/kubernetes/kubernetes-endpoint-source.js';
import type { KubeCollectionReport } from './api-watcher.js';
import { KubeApiWatcher } from './api-watcher.js';
import { DiscoveryOptionError } from './errors.js';
import { runningInPod } from './kube-access.js';
import type { DiscoveryMode, KubernetesOptions } from './kubernetes-options.js';

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

/** The Kubernetes options to use, or undefined for the embedded default. */
export function kubernetesOptionsFor(discovery: DiscoveryMode | KubernetesOptions | undefined): KubernetesOptions | undefined {
  if (discovery === undefined || discovery === 'embedded') return undefined;
  if (discovery === 'kubernetes') return {};
  if (discovery === 'auto') return runningInPod() ? {} : undefined;
  if (typeof discovery !== 'object' || discovery === null) {
    throw new DiscoveryOptionError(`createMesh: discovery must be 'auto', 'kubernetes', 'embedded' or a KubernetesOptions object, found ${JSON.stringify(discovery)}`);
  }
  return discovery;
}

/** The API watcher and, unless turned off, the Istio configuration source over it. */
export async function openKubernetes(
  options: KubernetesOptions,
  namespace: string | undefined,
  rootNamespace: string,
  clock: MeshClock = systemClock,
): Promise<{ watcher: KubeApiWatcher; source: KubernetesSource | undefined; namespace: string | undefined }> {
  const watcher = await KubeApiWatcher.connect(options, clock);
  const own = namespace ?? watcher.access.namespace;
  if (options.istioConfig === false) return { watcher, source: undefined, namespace: own };
  const source = new KubernetesSource(watcher, {
    namespaces: [own ?? 'default', rootNamespace, ...(options.namespaces ?? [])],
    clock,
    ...(options.backoff?.initialMs !== undefined ? { backoffInitialMs: options.backoff.initialMs } : {}),
    ...(options.backoff?.maxMs !== undefined ? { backoffMaxMs: options.backoff.maxMs } : {}),
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
