import type { MeshClock, RandomSource } from '../clock.js';
import { pause, systemClock, systemRandom } from '../clock.js';
import type { RawDocument } from '../config/document.js';
import type { ConfigIssue } from '../issue.js';
import type { KubeApiWatcher } from './api-watcher.js';
import type { KubeCollection, KubeObject } from './collection.js';
import type { WantedKind } from './api-discovery.js';
import { discoverKinds } from './api-discovery.js';
import { resourcePath } from './resource-path.js';
import type { ConfigSource, SourceUpdate } from '../config/sources/source.js';

/** The kinds the configuration pipeline reads, as the API serves them. */
export const ISTIO_CONFIG_KINDS: readonly WantedKind[] = [
  { group: 'networking.istio.io', plural: 'virtualservices', kind: 'VirtualService' },
  { group: 'networking.istio.io', plural: 'destinationrules', kind: 'DestinationRule' },
  { group: 'networking.istio.io', plural: 'serviceentries', kind: 'ServiceEntry' },
  { group: 'networking.istio.io', plural: 'workloadentries', kind: 'WorkloadEntry' },
  { group: 'networking.istio.io', plural: 'sidecars', kind: 'Sidecar' },
  { group: 'networking.istio.io', plural: 'envoyfilters', kind: 'EnvoyFilter' },
  { group: 'security.istio.io', plural: 'peerauthentications', kind: 'PeerAuthentication' },
  { group: 'security.istio.io', plural: 'authorizationpolicies', kind: 'AuthorizationPolicy' },
  { group: 'security.istio.io', plural: 'requestauthentications', kind: 'RequestAuthentication' },
  { group: 'sidecarless.io', plural: 'ratelimitpolicies', kind: 'RateLimitPolicy' },
  { group: 'gateway.networking.k8s.io', plural: 'httproutes', kind: 'HTTPRoute' },
  { group: 'gateway.networking.k8s.io', plural: 'grpcroutes', kind: 'GRPCRoute' },
];

export interface KubernetesSourceOptions {
  /** Namespaces to read (the process's, the root namespace, any configured). */
  readonly namespaces: readonly string[];
  /**
   * The longest `start` waits for discovery and the first list of every kind (each succeeded or
   * failed once) before it delivers what it has; later content arrives as updates. Default 15 000 ms.
   */
  readonly startTimeoutMs?: number;
  /** Retry delays for discovery, as the watches' back-off. */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /** The start bound and the discovery back-off (background timers). Default: the system clock. */
  readonly clock?: MeshClock;
  /** Jitter of those delays. Default: `Math.random`. */
  readonly random?: RandomSource;
}

/**
 * Istio configuration from the Kubernetes API: every kind the pipeline reads, in each configured
 * namespace, at the version discovery picks. Each change delivers the full content, coalesced: the
 * events of one tick make one update. A kind or group the cluster does not serve (Istio not
 * installed) is noted in `unserved`, not an error.
 */
export class KubernetesSource implements ConfigSource {
  readonly id = 'kubernetes';
  /** Kinds or groups the API does not serve, with why; filled by discovery. */
  unserved: readonly string[] = [];
  /** Discovery's last failure, while it is retried; cleared when it succeeds. */
  discoveryError: Error | undefined;
  private readonly collections: KubeCollection<KubeObject>[] = [];
  private readonly documents = new WeakMap<KubeObject, RawDocument>();
  private readonly unsubscribe: (() => void)[] = [];
  private onUpdate: ((update: SourceUpdate) => void) | undefined;
  private flushScheduled = false;
  private closed = false;
  private abort = new AbortController();
  private wake: (() => void) | undefined;
  private attempted: (() => void) | undefined;

  private readonly clock: MeshClock;

  constructor(
    private readonly watcher: KubeApiWatcher,
    private readonly options: KubernetesSourceOptions,
  ) {
    this.clock = options.clock ?? systemClock;
  }

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    // Ready when discovery and every kind's list succeeded or failed once: an unreachable API or
    // a forbidden kind must not hold up the start; the error is in status and retries go on.
    const attempted = new Promise<void>((resolve) => {
      this.attempted = resolve;
    });
    void this.discover();
    const ready = attempted.then(() => Promise.all(this.collections.map(settled)));
    const timeout = pause(this.clock, this.options.startTimeoutMs ?? 15_000);
    await Promise.race([ready.catch(() => undefined), timeout.done]);
    timeout.wake();
    onUpdate(this.build());
    // Only after the initial content: later changes are updates.
    this.onUpdate = onUpdate;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    this.wake?.();
    for (const stop of this.unsubscribe) stop();
    this.onUpdate = undefined;
  }

  /** Finds the served kinds (retrying until it can) and opens their collections. */
  private async discover(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      try {
        const { served, unserved } = await discoverKinds(this.watcher.access, ISTIO_CONFIG_KINDS, this.abort.signal);
        if (this.closed) return;
        this.unserved = unserved;
        this.discoveryError = undefined;
        for (const type of served) {
          for (const namespace of new Set(this.options.namespaces)) {
            const collection = this.watcher.collection<KubeObject>(type, { namespace });
            this.collections.push(collection);
            this.unsubscribe.push(collection.onChange(() => this.schedule()));
          }
        }
        if (served.length > 0) this.schedule();
        this.attempted?.();
        return;
      } catch (error) {
        this.attempted?.();
        if (this.closed) return;
        this.discoveryError = error instanceof Error ? error : new Error(String(error));
        failures += 1;
        const ceiling = Math.min(this.options.backoffMaxMs ?? 30_000, (this.options.backoffInitialMs ?? 500) * 2 ** Math.min(failures - 1, 20));
        const random = this.options.random ?? systemRandom;
        // The wait also ends when the API server answers another request (a watch of the mesh's):
        // it is back, and discovery starts over at once instead of waiting out its back-off.
        const answered = await new Promise<boolean>((resolve) => {
          // Neither callback runs before both are set: clocks and answers call back later.
          const end = (byAnswer: boolean): void => {
            cancel();
            stopListening();
            this.wake = undefined;
            resolve(byAnswer);
          };
          const cancel = this.clock.schedule(ceiling / 2 + random() * (ceiling / 2), () => end(false), 'background');
          const stopListening = this.watcher.access.onAnswer(() => end(true));
          this.wake = () => end(false);
        });
        if (answered) failures = 0;
      }
    }
  }

  /** Many events in one tick make one update. */
  private schedule(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      if (!this.closed && this.onUpdate) this.onUpdate(this.build());
    });
  }

  private build(): SourceUpdate {
    const documents: RawDocument[] = [];
    const issues: ConfigIssue[] = [];
    for (const collection of this.collections) {
      for (const object of collection.items.values()) documents.push(this.document(object));
    }
    return { source: this.id, documents, issues };
  }

  /** One RawDocument per object version, so unchanged objects keep their validation. */
  private document(object: KubeObject): RawDocument {
    let document = this.documents.get(object);
    if (!document) {
      document = { value: object, location: { file: `kubernetes ${objectPath(object)}` } };
      this.documents.set(object, document);
    }
    return document;
  }
}

/** Resolves once the collection is synced or has failed at least once. */
function settled(collection: KubeCollection<KubeObject>): Promise<void> {
  if (collection.status.synced || collection.status.error) return Promise.resolve();
  return new Promise((resolve) => {
    const stop = collection.onStatus((status) => {
      if (status.synced || status.error) {
        stop();
        resolve();
      }
    });
    void collection.synced.then(
      () => {
        stop();
        resolve();
      },
      () => resolve(),
    );
  });
}

/** `/apis/networking.istio.io/v1/namespaces/shop/virtualservices/reviews`-like, for messages. */
function objectPath(object: KubeObject): string {
  const apiVersion = object.apiVersion ?? '';
  const slash = apiVersion.indexOf('/');
  const group = slash >= 0 ? apiVersion.slice(0, slash) : '';
  const version = slash >= 0 ? apiVersion.slice(slash + 1) : apiVersion;
  const plural = ISTIO_CONFIG_KINDS.find((k) => k.kind === object.kind)?.plural ?? (object.kind ?? '').toLowerCase();
  const type = { group, version, plural, kind: object.kind ?? '', namespaced: object.metadata.namespace !== undefined };
  return `${resourcePath(type, object.metadata.namespace)}/${object.metadata.name}`;
}
