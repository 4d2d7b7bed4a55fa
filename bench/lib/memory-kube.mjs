// An in-memory KubeWatcher for benchmarks (the same contract as test/helpers/memory-kube.ts):
// collections hold what a reflector would, listeners run synchronously after each change.
const keyOf = (o) => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

export class MemoryCollection {
  constructor(description) {
    this.description = description;
    this.items = new Map();
    this.status = { synced: false, restarts: 0 };
    this.changeListeners = new Set();
    this.statusListeners = new Set();
    this.synced = new Promise((resolve) => (this.resolveSynced = resolve));
  }
  onChange(l) {
    this.changeListeners.add(l);
    return () => this.changeListeners.delete(l);
  }
  onStatus(l) {
    this.statusListeners.add(l);
    return () => this.statusListeners.delete(l);
  }
  sync(objects = []) {
    this.upsert(...objects);
    this.status = { synced: true, restarts: 0 };
    for (const l of this.statusListeners) l(this.status);
    this.resolveSynced();
  }
  upsert(...objects) {
    const changes = [];
    for (const object of objects) {
      const key = keyOf(object);
      changes.push({ type: this.items.has(key) ? 'MODIFIED' : 'ADDED', object });
      this.items.set(key, object);
    }
    if (changes.length > 0) for (const l of this.changeListeners) l(changes);
  }
}

export class MemoryKubeWatcher {
  constructor() {
    this.collections = new Map();
  }
  collection(type, options = {}) {
    return this.get(type.plural, options.namespace);
  }
  get(plural, namespace) {
    const key = `${plural}|${namespace ?? ''}`;
    let c = this.collections.get(key);
    if (!c) this.collections.set(key, (c = new MemoryCollection(`${plural}${namespace ? ` in ${namespace}` : ''}`)));
    return c;
  }
  async close() {}
}
