import type {
  KubeChange,
  KubeCollection,
  KubeCollectionStatus,
  KubeObject,
  KubeResourceType,
  KubeWatcher,
  KubeWatchOptions,
} from '../../src/kubernetes/collection.js';
import { objectKey } from '../../src/kubernetes/collection.js';

/**
 * An in-memory collection: what a reflector would hold, changed by the test. Listeners run
 * synchronously after `items` reflects a change, as the KubeCollection contract says.
 */
export class MemoryCollection<T extends KubeObject> implements KubeCollection<T> {
  readonly items = new Map<string, T>();
  readonly synced: Promise<void>;
  status: KubeCollectionStatus = { synced: false, restarts: 0 };
  private resolveSynced!: () => void;
  private readonly changeListeners = new Set<(changes: readonly KubeChange<T>[]) => void>();
  private readonly statusListeners = new Set<(status: KubeCollectionStatus) => void>();

  constructor(
    readonly description: string,
    private readonly labelSelector: string | undefined,
  ) {
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
  }

  onChange(listener: (changes: readonly KubeChange<T>[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onStatus(listener: (status: KubeCollectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /**
   * The first complete list: items become `objects` (delivered as ADDED changes, the difference
   * from nothing), then the collection is synced.
   */
  sync(objects: readonly T[] = []): void {
    this.upsert(...objects);
    this.setStatus({ synced: true, restarts: this.status.restarts });
    this.resolveSynced();
  }

  /** Adds or replaces objects in one batch (one watch event each, delivered together). */
  upsert(...objects: T[]): void {
    const changes: KubeChange<T>[] = [];
    for (const object of objects) {
      const key = objectKey(object);
      const had = this.items.has(key);
      if (!this.selects(object)) {
        if (had) {
          this.items.delete(key);
          changes.push({ type: 'DELETED', object });
        }
        continue;
      }
      this.items.set(key, object);
      changes.push({ type: had ? 'MODIFIED' : 'ADDED', object });
    }
    this.notify(changes);
  }

  delete(...keysOrObjects: (string | T)[]): void {
    const changes: KubeChange<T>[] = [];
    for (const k of keysOrObjects) {
      const key = typeof k === 'string' ? k : objectKey(k);
      const object = this.items.get(key);
      if (!object) continue;
      this.items.delete(key);
      changes.push({ type: 'DELETED', object });
    }
    this.notify(changes);
  }

  setStatus(status: KubeCollectionStatus): void {
    this.status = status;
    for (const l of this.statusListeners) l(status);
  }

  /** Fails the watch as the API would: an error with the HTTP status code. */
  fail(statusCode: number, message: string): void {
    this.setStatus({ synced: this.status.synced, restarts: this.status.restarts + 1, error: Object.assign(new Error(message), { statusCode }) });
  }

  private notify(changes: KubeChange<T>[]): void {
    if (changes.length === 0) return;
    for (const l of this.changeListeners) l(changes);
  }

  /** Existence selectors (`key`) and equality ones (`key=value`), comma-separated: what we use. */
  private selects(object: T): boolean {
    if (!this.labelSelector) return true;
    const labels = object.metadata.labels ?? {};
    return this.labelSelector.split(',').every((term) => {
      const eq = term.indexOf('=');
      return eq < 0 ? term in labels : labels[term.slice(0, eq)] === term.slice(eq + 1);
    });
  }
}

/**
 * A KubeWatcher over memory. Collections are made on first request, for every type and options
 * asked for; `autoSync` syncs each new one at once, with the objects `seed` gives for it.
 */
export class MemoryKubeWatcher implements KubeWatcher {
  readonly collections = new Map<string, MemoryCollection<KubeObject>>();
  /** `plural|namespace` of every collection asked for, in order: which namespaces were opened. */
  readonly opened: string[] = [];
  autoSync = true;

  collection<T extends KubeObject>(type: KubeResourceType, options: KubeWatchOptions = {}): KubeCollection<T> {
    const c = this.get<T>(type.plural, options.namespace, options.labelSelector, type);
    this.opened.push(`${type.plural}|${options.namespace ?? ''}`);
    return c;
  }

  /** The collection of `plural` in `namespace` (made, empty and unsynced, if nobody asked yet). */
  get<T extends KubeObject>(plural: string, namespace?: string, labelSelector?: string, type?: KubeResourceType): MemoryCollection<T> {
    const key = `${plural}|${namespace ?? ''}`;
    let c = this.collections.get(key);
    if (!c) {
      const description = `${type ? `${type.group ? `${type.group}/` : ''}${type.version} ${type.kind}` : plural}${namespace ? ` in ${namespace}` : ''}`;
      c = new MemoryCollection<KubeObject>(description, labelSelector);
      this.collections.set(key, c);
      if (type && this.autoSync) c.sync();
    }
    return c as unknown as MemoryCollection<T>;
  }

  async close(): Promise<void> {
    // Nothing runs in the background.
  }
}
