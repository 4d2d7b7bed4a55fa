import type { MeshClock, RandomSource } from '../clock.js';
import { systemRandom } from '../clock.js';
import type { KubeChange, KubeCollection, KubeCollectionStatus, KubeObject, KubeResourceType, KubeWatchOptions } from './collection.js';
import { objectKey } from './collection.js';
import type { KubeAccess } from './kube-access.js';
import { MeshClosedError } from '../errors.js';
import { KubernetesApiError } from './errors.js';
import { parseJson } from './kube-access.js';
import { LIST_ACCEPT, METADATA_ACCEPT, METADATA_LIST_ACCEPT, apiVersionOf, describeCollection, resourcePath } from './resource-path.js';

export interface ReflectorOptions {
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  readonly pageSize: number;
  /** Back-off pauses, watch lengths and the stalled-watch bound go by this clock (the mesh's). */
  readonly clock: MeshClock;
  /** Back-off jitter and watch timeouts. Default: `Math.random`. */
  readonly random?: RandomSource;
}

/** A watch shorter than this that brought nothing is suspect when it happens twice in a row. */
const SHORT_WATCH_MS = 1000;

/** The API forgot the resourceVersion we asked for (410 Gone): list again. */
class GoneError extends Error {}

/**
 * Keeps one collection in step with the API: list (paginated), then watch from the list's
 * resourceVersion with bookmarks. 410 Gone re-lists and delivers only the difference; a stream the
 * server closes is watched again from the last resourceVersion; any error retries with jittered
 * exponential back-off while the last known items keep serving.
 */
export class Reflector<T extends KubeObject> implements KubeCollection<T> {
  readonly description: string;
  readonly items = new Map<string, T>();
  readonly synced: Promise<void>;
  private currentStatus: KubeCollectionStatus = { synced: false, restarts: 0 };
  private readonly changeListeners = new Set<(changes: readonly KubeChange<T>[]) => void>();
  private readonly statusListeners = new Set<(status: KubeCollectionStatus) => void>();
  private resolveSynced!: () => void;
  private rejectSynced!: (error: Error) => void;
  private resourceVersion: string | undefined;
  private failures = 0;
  /** Watches in a row the server closed at once with nothing in them. */
  private emptyCloses = 0;
  private readonly clock: MeshClock;
  private readonly random: RandomSource;
  private closed = false;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  private readonly path: string;
  private readonly apiVersion: string;

  constructor(
    private readonly access: KubeAccess,
    private readonly type: KubeResourceType,
    private readonly watchOptions: KubeWatchOptions,
    private readonly options: ReflectorOptions,
  ) {
    this.description = describeCollection(type, watchOptions);
    this.clock = options.clock;
    this.random = options.random ?? systemRandom;
    this.path = resourcePath(type, watchOptions.namespace);
    this.apiVersion = apiVersionOf(type);
    this.synced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    this.synced.catch(() => undefined);
  }

  get status(): KubeCollectionStatus {
    return this.currentStatus;
  }

  onChange(listener: (changes: readonly KubeChange<T>[]) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  onStatus(listener: (status: KubeCollectionStatus) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  start(): void {
    void this.run();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.abort?.abort();
    this.wake?.();
    this.rejectSynced(new MeshClosedError(`${this.description}: closed before the first list completed`));
    this.changeListeners.clear();
    this.statusListeners.clear();
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.abort = new AbortController();
      try {
        if (this.resourceVersion === undefined) await this.list(this.abort.signal);
        const started = this.clock.now();
        const received = await this.watch(this.abort.signal);
        if (this.closed) return;
        // The server ended the stream (its timeout, a restart): watch again from where we are, at
        // once, events or not (an idle collection's watch ends empty at its timeout). Only a
        // second short empty watch in a row waits, as a failure does: a server that closes every
        // watch at once is not hammered.
        this.restarted();
        if (received || this.clock.now() - started >= SHORT_WATCH_MS) this.emptyCloses = 0;
        else if (++this.emptyCloses > 1) {
          this.failures += 1;
          await this.pause(this.backoff(), false);
        }
      } catch (error) {
        if (this.closed) return;
        if (error instanceof GoneError) {
          this.resourceVersion = undefined;
          this.restarted();
          continue;
        }
        this.failures += 1;
        this.setStatus({ ...this.currentStatus, error: asError(error, this.description), restarts: this.currentStatus.restarts + 1 });
        await this.pause(this.backoff(), serverUnavailable(error));
      }
    }
  }

  private async list(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    let continueToken: string | undefined;
    let resourceVersion: string;
    do {
      const query = this.query({ limit: String(this.options.pageSize), continue: continueToken });
      const accept = this.type.metadataOnly ? METADATA_LIST_ACCEPT : LIST_ACCEPT;
      const response = await this.access.get(`${this.path}?${query}`, accept, signal).catch((error: unknown) => {
        // An expired continue token: start the list over.
        if (error instanceof KubernetesApiError && error.status === 410) throw new GoneError();
        throw error;
      });
      const page = parseJson(await response.text(), `${this.description} list`) as KubeList;
      if (!page || !Array.isArray(page.items)) throw new KubernetesApiError(`${this.description}: the list answer has no items`);
      for (const item of page.items) {
        const object = this.complete(item);
        if (object) fresh.set(objectKey(object), object);
      }
      continueToken = page.metadata?.continue || undefined;
      resourceVersion = page.metadata?.resourceVersion ?? '';
    } while (continueToken !== undefined);
    this.replace(fresh);
    this.resourceVersion = resourceVersion;
    this.recovered();
    if (!this.currentStatus.synced) {
      this.setStatus({ ...this.currentStatus, synced: true });
      this.resolveSynced();
    }
  }

  /** Swaps in a complete list, telling listeners only what differs from what they know. */
  private replace(fresh: Map<string, T>): void {
    const changes: KubeChange<T>[] = [];
    for (const [key, old] of this.items) {
      if (!fresh.has(key)) changes.push({ type: 'DELETED', object: old });
    }
    for (const [key, object] of fresh) {
      const old = this.items.get(key);
      if (!old) changes.push({ type: 'ADDED', object });
      else if (old.metadata.resourceVersion !== object.metadata.resourceVersion) changes.push({ type: 'MODIFIED', object });
      else fresh.set(key, old);
    }
    this.items.clear();
    for (const [key, object] of fresh) this.items.set(key, object);
    if (changes.length > 0) this.emitChanges(changes);
  }

  /** Reads one watch stream to its end; returns whether it carried any event. */
  private async watch(signal: AbortSignal): Promise<boolean> {
    // As client-go: a random timeout, so many watchers do not reconnect all at once.
    const timeoutSeconds = 300 + Math.floor(this.random() * 300);
    const query = this.query({
      watch: '1',
      resourceVersion: this.resourceVersion,
      allowWatchBookmarks: 'true',
      timeoutSeconds: String(timeoutSeconds),
    });
    // A connection that died without a FIN (a vanished node, a NAT timeout) sends nothing: give up
    // on it a minute after the server should have closed it.
    const stalled = new AbortController();
    const onAbort = (): void => stalled.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const cancelStall = this.options.clock.schedule((timeoutSeconds + 60) * 1000, () => stalled.abort(), 'background');
    try {
      const accept = this.type.metadataOnly ? METADATA_ACCEPT : LIST_ACCEPT;
      const response = await this.access.get(`${this.path}?${query}`, accept, stalled.signal).catch((error: unknown) => {
        if (error instanceof KubernetesApiError && error.status === 410) throw new GoneError();
        throw error;
      });
      this.recovered();
      return await this.readEvents(response);
    } catch (error) {
      if (stalled.signal.aborted && !signal.aborted) throw new KubernetesApiError(`${this.description} watch: no data for ${timeoutSeconds + 60} s`);
      throw error;
    } finally {
      cancelStall();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private async readEvents(response: Response): Promise<boolean> {
    const body = response.body;
    if (!body) return false;
    let received = false;
    let buffered = '';
    const decoder = new TextDecoder();
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (line !== '') {
          this.onEvent(parseJson(line, `${this.description} watch`) as WatchEvent);
          received = true;
        }
        newline = buffered.indexOf('\n');
      }
    }
    if (buffered.trim() !== '') {
      this.onEvent(parseJson(buffered, `${this.description} watch`) as WatchEvent);
      received = true;
    }
    return received;
  }

  private onEvent(event: WatchEvent): void {
    if (this.closed) return;
    switch (event?.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const object = this.complete(event.object);
        if (!object) return;
        this.resourceVersion = object.metadata.resourceVersion ?? this.resourceVersion;
        const key = objectKey(object);
        const type = this.items.has(key) ? 'MODIFIED' : 'ADDED';
        this.items.set(key, object);
        this.emitChanges([{ type, object }]);
        return;
      }
      case 'DELETED': {
        const object = this.complete(event.object);
        if (!object) return;
        this.resourceVersion = object.metadata.resourceVersion ?? this.resourceVersion;
        const key = objectKey(object);
        const known = this.items.get(key);
        if (!known) return;
        this.items.delete(key);
        this.emitChanges([{ type: 'DELETED', object }]);
        return;
      }
      case 'BOOKMARK': {
        const version = (event.object as Partial<KubeObject> | undefined)?.metadata?.resourceVersion;
        if (version) this.resourceVersion = version;
        return;
      }
      case 'ERROR': {
        const status = event.object as { code?: number; message?: string } | undefined;
        if (status?.code === 410) throw new GoneError();
        throw new KubernetesApiError(`${this.description} watch: ${status?.code ?? ''} ${status?.message ?? 'error event'}`.trim(), status?.code);
      }
      default:
        throw new KubernetesApiError(`${this.description} watch: unexpected event ${JSON.stringify(event).slice(0, 100)}`);
    }
  }

  /** Objects in a list or a metadata-only answer may omit apiVersion and kind. */
  private complete(item: unknown): T | undefined {
    if (typeof item !== 'object' || item === null) return undefined;
    const object = item as Partial<KubeObject> & Record<string, unknown>;
    if (typeof object.metadata?.name !== 'string') return undefined;
    if (object.kind === undefined || object.kind === 'PartialObjectMetadata') {
      return { ...object, apiVersion: this.apiVersion, kind: this.type.kind } as unknown as T;
    }
    return object as unknown as T;
  }

  private query(params: Record<string, string | undefined>): string {
    const search = new URLSearchParams();
    if (this.watchOptions.labelSelector) search.set('labelSelector', this.watchOptions.labelSelector);
    if (this.watchOptions.fieldSelector) search.set('fieldSelector', this.watchOptions.fieldSelector);
    for (const [key, value] of Object.entries(params)) if (value !== undefined && value !== '') search.set(key, value);
    return search.toString();
  }

  private backoff(): number {
    const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffInitialMs * 2 ** Math.min(this.failures - 1, 20));
    // Half fixed, half random: spread reconnects, but never hammer the server.
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  /**
   * Waits `ms`. With `untilAnswered` (the server could not be reached, or failed), the wait ends
   * as soon as the API server answers any other request: it is back, and the back-off starts over.
   */
  private pause(ms: number, untilAnswered: boolean): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      // Neither callback runs before both are set: clocks and answers call back later.
      const end = (): void => {
        if (done) return;
        done = true;
        cancel();
        stopListening?.();
        this.wake = undefined;
        resolve();
      };
      const cancel = this.clock.schedule(ms, end, 'background');
      const stopListening = untilAnswered
        ? this.access.onAnswer(() => {
            this.failures = 0;
            end();
          })
        : undefined;
      this.wake = end;
    });
  }

  private recovered(): void {
    this.failures = 0;
    if (this.currentStatus.error !== undefined) {
      this.setStatus({ synced: this.currentStatus.synced, restarts: this.currentStatus.restarts });
    }
  }

  private restarted(): void {
    this.setStatus({ ...this.currentStatus, restarts: this.currentStatus.restarts + 1 });
  }

  private setStatus(status: KubeCollectionStatus): void {
    this.currentStatus = status;
    for (const listener of [...this.statusListeners]) callSafely(listener, status);
  }

  private emitChanges(changes: readonly KubeChange<T>[]): void {
    for (const listener of [...this.changeListeners]) callSafely(listener, changes);
  }
}

interface KubeList {
  readonly items?: unknown[];
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
}

interface WatchEvent {
  readonly type?: string;
  readonly object?: unknown;
}

/** No answer, or the server's own failure (5xx): worth retrying as soon as the server answers again. */
function serverUnavailable(error: unknown): boolean {
  return !(error instanceof KubernetesApiError) || error.status === undefined || error.status >= 500;
}

function asError(error: unknown, description: string): Error {
  if (error instanceof Error) return error;
  return new KubernetesApiError(`${description}: ${String(error)}`);
}

/** A consumer's bug must neither stop the watch nor crash the process: it becomes a warning. */
function callSafely<A>(listener: (arg: A) => void, arg: A): void {
  try {
    listener(arg);
  } catch (error) {
    process.emitWarning(`a Kubernetes collection listener threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
}
