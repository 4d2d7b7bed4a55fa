import type { MeshClock, RandomSource } from '../clock.js';
import { systemClock } from '../clock.js';
import { MeshClosedError } from '../errors.js';
import type { KubeCollection, KubeCollectionStatus, KubeObject, KubeResourceType, KubeWatchOptions, KubeWatcher } from './collection.js';
import { KubeAccess } from './kube-access.js';
import type { KubernetesOptions } from './kubernetes-options.js';
import { Reflector } from './reflector.js';
import type { ReflectorOptions } from './reflector.js';

/** A collection's description and status, as `mesh.kubernetesStatus()` and its event report them. */
export interface KubeCollectionReport {
  readonly description: string;
  readonly status: KubeCollectionStatus;
}

/** The mesh's clock and randomness, for back-off delays and their jitter. */
export interface KubeRuntime {
  readonly clock: MeshClock;
  readonly random?: RandomSource;
}

/**
 * The {@link KubeWatcher} over the real API: one reflector per (type, namespace, selectors),
 * created on first use and shared afterwards.
 */
export class KubeApiWatcher implements KubeWatcher {
  private readonly reflectors = new Map<string, Reflector<KubeObject>>();
  /** How many times each collection was asked for and not released: shared ones outlive one user's release. */
  private readonly users = new Map<string, number>();
  private readonly statusListeners = new Set<(report: KubeCollectionReport) => void>();
  private readonly reflectorOptions: ReflectorOptions;
  private closed = false;

  private constructor(
    readonly access: KubeAccess,
    options: KubernetesOptions,
    runtime: KubeRuntime,
  ) {
    this.reflectorOptions = {
      backoffInitialMs: options.backoff?.initialMs ?? 500,
      backoffMaxMs: options.backoff?.maxMs ?? 30_000,
      pageSize: options.pageSize ?? 500,
      ...runtime,
    };
  }

  /** Loads the client and the credentials; watches nothing yet. Back-offs and re-watches run on the runtime's clock. */
  static async connect(options: KubernetesOptions = {}, runtime: KubeRuntime = { clock: systemClock }): Promise<KubeApiWatcher> {
    return new KubeApiWatcher(await KubeAccess.create(options), options, runtime);
  }

  collection<T extends KubeObject>(type: KubeResourceType, options: KubeWatchOptions = {}): KubeCollection<T> {
    if (this.closed) throw new MeshClosedError('the Kubernetes watcher is closed');
    const key = collectionKey(type, options);
    let reflector = this.reflectors.get(key);
    if (!reflector) {
      reflector = new Reflector<KubeObject>(this.access, type, options, this.reflectorOptions);
      const created = reflector;
      created.onStatus((status) => {
        for (const listener of [...this.statusListeners]) listener({ description: created.description, status });
      });
      this.reflectors.set(key, created);
      created.start();
    }
    this.users.set(key, (this.users.get(key) ?? 0) + 1);
    return reflector as unknown as KubeCollection<T>;
  }

  release(type: KubeResourceType, options: KubeWatchOptions = {}): void {
    const key = collectionKey(type, options);
    const reflector = this.reflectors.get(key);
    if (!reflector) return;
    const users = (this.users.get(key) ?? 1) - 1;
    if (users > 0) {
      this.users.set(key, users);
      return;
    }
    this.users.delete(key);
    this.reflectors.delete(key);
    reflector.close();
  }

  /** Every open collection and its status. */
  reports(): KubeCollectionReport[] {
    return [...this.reflectors.values()].map((r) => ({ description: r.description, status: r.status }));
  }

  /** Called whenever a collection's status changes. Returns the unsubscribe function. */
  onStatus(listener: (report: KubeCollectionReport) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const reflector of this.reflectors.values()) reflector.close();
    this.reflectors.clear();
    this.users.clear();
    this.statusListeners.clear();
    await this.access.close();
  }
}

function collectionKey(type: KubeResourceType, options: KubeWatchOptions): string {
  return JSON.stringify([
    type.group,
    type.version,
    type.plural,
    Boolean(type.metadataOnly),
    options.namespace ?? null,
    options.labelSelector ?? '',
    options.fieldSelector ?? '',
  ]);
}
