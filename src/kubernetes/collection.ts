/**
 * The seam between watching the Kubernetes API and using what it says. A reflector (list, then
 * watch, re-list on 410 Gone, reconnect with back-off) keeps one `KubeCollection` per resource
 * kind and namespace set; endpoint discovery and the configuration source read collections and
 * never see the protocol. Our own minimal object types, so `@kubernetes/client-node` stays an
 * optional peer that only the reflector loads.
 */

/** The metadata every object has, as the API serves it. */
export interface KubeObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly deletionTimestamp?: string;
}

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: KubeObjectMeta;
}

/** One change to a collection. A re-list that replaces the contents arrives as the difference. */
export interface KubeChange<T extends KubeObject> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: T;
}

/** Health of the watch behind a collection, for status, events and logs. */
export interface KubeCollectionStatus {
  /** True once the first complete list arrived; the items are then the API's state at some point. */
  readonly synced: boolean;
  /** The last error (API unreachable, 401, 403...), cleared when the watch works again. */
  readonly error?: Error;
  /** How many times the watch was restarted (dropped stream, 410 Gone, errors). */
  readonly restarts: number;
}

/** The objects of one kind the API currently has, kept up to date. */
export interface KubeCollection<T extends KubeObject> {
  /** A name for logs and errors: `discovery.k8s.io/v1 EndpointSlice in shop, default`. */
  readonly description: string;
  /** Current objects keyed `namespace/name` (`name` for cluster-scoped kinds). */
  readonly items: ReadonlyMap<string, T>;
  /** Resolves after the first complete list (rejects only when the collection is closed first). */
  readonly synced: Promise<void>;
  readonly status: KubeCollectionStatus;
  /**
   * Called after every batch of changes (one watch event, or a re-list's difference), after
   * `items` reflects them. Returns the unsubscribe function.
   */
  onChange(listener: (changes: readonly KubeChange<T>[]) => void): () => void;
  /** Called whenever `status` changes. Returns the unsubscribe function. */
  onStatus(listener: (status: KubeCollectionStatus) => void): () => void;
}

/** `namespace/name`, the key of {@link KubeCollection.items}. */
export function objectKey(object: KubeObject): string {
  const { namespace, name } = object.metadata;
  return namespace ? `${namespace}/${name}` : name;
}

/** A resource kind to list and watch. */
export interface KubeResourceType {
  /** `''` for the core group (Pods, Services, Nodes). */
  readonly group: string;
  readonly version: string;
  /** The URL name: `endpointslices`, `virtualservices`. */
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /**
   * Ask for metadata only (`PartialObjectMetadata`): labels of Pods without their specs, the
   * least data that works.
   */
  readonly metadataOnly?: boolean;
}

export interface KubeWatchOptions {
  /** One namespace; undefined for every namespace (or a cluster-scoped kind). */
  readonly namespace?: string;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/**
 * Opens collections on the API. Implemented by the reflector over `@kubernetes/client-node`; tests
 * of code that only consumes collections may use an in-memory one. Asking twice for the same type
 * and options returns the same collection.
 */
export interface KubeWatcher {
  collection<T extends KubeObject>(type: KubeResourceType, options?: KubeWatchOptions): KubeCollection<T>;
  /**
   * One user of the collection of `type` and `options` (one `collection` call) no longer needs
   * it: once every user released it, its watch stops and it is forgotten (a later `collection`
   * opens a new one). A Secret watched by name for a DestinationRule that no longer names it; a
   * collection that others asked for and never release stays open. A watcher without it keeps
   * every collection until `close`.
   */
  release?(type: KubeResourceType, options?: KubeWatchOptions): void;
  /** Stops every watch and timer. */
  close(): Promise<void>;
}
