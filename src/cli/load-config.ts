import { ConfigStore } from '../config/config-store.js';
import type { ConfigIssue } from '../issue.js';
import type { Snapshot } from '../config/snapshot.js';
import { FileSource } from '../config/sources/index.js';
import { MeshConfigError } from '../config/errors.js';

export interface LoadedConfig {
  readonly snapshot: Snapshot | undefined;
  readonly issues: readonly ConfigIssue[];
}

/** Reads, validates and compiles configuration once (no watching), as the mesh would. */
export async function loadConfig(
  paths: readonly string[],
  options: { namespace: string; labels?: Readonly<Record<string, string>>; rootNamespace?: string; clusterDomain?: string },
): Promise<LoadedConfig> {
  const store = new ConfigStore([new FileSource(paths, { watch: false })], {
    namespace: options.namespace,
    rootNamespace: options.rootNamespace ?? 'istio-system',
    clusterDomain: options.clusterDomain ?? 'cluster.local',
    workloadLabels: options.labels ?? {},
    // The TLS files of DestinationRules are paths on the workload's machine, not this one.
    tlsFiles: false,
    // The application's own balancer policies are registered in its process, not this one.
    registeredBalancersOnly: false,
  });
  try {
    const snapshot = await store.start();
    return { snapshot, issues: snapshot.warnings };
  } catch (error) {
    if (error instanceof MeshConfigError) return { snapshot: undefined, issues: error.issues };
    throw error;
  } finally {
    await store.close();
  }
}
