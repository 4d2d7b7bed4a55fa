import { EventEmitter } from 'node:events';
import type { MeshClock } from '../clock.js';
import { systemClock } from '../clock.js';
import { MeshConfigError } from './errors.js';
import type { CompileContext } from './compile/context.js';
import { SnapshotCompiler } from './compile/compile-snapshot.js';
import type { RawDocument } from './document.js';
import type { ConfigIssue } from '../issue.js';
import { formatLocation, formatResourceRef } from '../issue.js';
import { RecentCache } from './recent-cache.js';
import type { MeshResource } from './resource.js';
import { resourceKey, resourceRef } from './resource.js';
import type { Snapshot } from './snapshot.js';
import type { Steps } from './slices.js';
import { STOPPED, every, nextTurn, runInSlices } from './slices.js';
import type { ConfigSource, SourceUpdate } from './sources/source.js';
import { validateDocument } from './validate/index.js';

export interface ConfigStoreEvents {
  /** A change was accepted and its snapshot now serves. */
  snapshot: [snapshot: Snapshot];
  /** A change was rejected whole; the previous snapshot keeps serving. */
  rejected: [error: MeshConfigError];
}

/**
 * Builds what is served from a candidate snapshot (clusters, balancers, rate limiters, ...)
 * without applying any of it. Throws when something cannot be built, best a `MeshConfigError`
 * naming the resource and field: the candidate is then rejected like an invalid change and the
 * snapshot in force keeps serving, with everything built from it.
 */
export type SnapshotStager = (candidate: Snapshot) => StagedSnapshot;

/** What a {@link SnapshotStager} built, applied only once the candidate is accepted. */
export interface StagedSnapshot {
  /** Applies what was built; runs in the turn the candidate becomes current and must not throw. */
  commit(): void;
}

/** What one source last delivered, for inspection. */
export interface SourceStatus {
  readonly id: string;
  /** Wall-clock ms of its last delivery; undefined before the first. */
  readonly deliveredAt: number | undefined;
  readonly documents: number;
  /** Errors and warnings in its last delivery (reading, parsing, validation). */
  readonly issues: readonly ConfigIssue[];
}

/** The last rejected change, for inspection. */
export interface RejectionStatus {
  /** Wall-clock ms. */
  readonly at: number;
  readonly error: MeshConfigError;
}

interface Validated {
  readonly resource: MeshResource | undefined;
  /** `Kind/namespace/name` of the resource. */
  readonly key: string;
  readonly issues: readonly ConfigIssue[];
}

export interface ConfigStoreOptions {
  /** Wall-clock time of deliveries, acceptances and rejections, for inspection. Default the system clock. */
  readonly clock?: MeshClock;
  /**
   * How long a reload may hold the event loop at a time, in ms (default 8); 0 yields after every
   * step. Between slices requests are served with the snapshot in force.
   */
  readonly sliceMs?: number;
  /**
   * A newer change abandons a reload in progress, unless changes have kept coming for this long
   * without one being applied (ms, default 1000): then the reload in progress finishes first, so
   * that changes arriving faster than a reload completes are still applied.
   */
  readonly supersedeForMs?: number;
}

const DEFAULT_SUPERSEDE_FOR_MS = 1_000;

/** What a reload produced: a snapshot to swap in, or the issues that reject it. */
type Outcome = { readonly snapshot: Snapshot } | { readonly rejected: readonly ConfigIssue[] };

/**
 * Holds what every source last delivered, validates and compiles it into snapshots, and swaps
 * them in atomically. A change with any error is rejected whole and the last good snapshot stays.
 *
 * A reload runs in slices of a few milliseconds on the event loop, so that requests keep being
 * served (with the snapshot in force) while thousands of resources are validated and compiled;
 * the new snapshot is swapped in at once when it is complete. A change that arrives while a
 * reload runs supersedes it: the reload is abandoned and starts over with everything the sources
 * hold now (validation results and compiled parts of unchanged resources are kept, so little is
 * done twice). Updates delivered in the same turn of the event loop make one reload.
 */
export class ConfigStore extends EventEmitter<ConfigStoreEvents> {
  private readonly latest = new Map<string, SourceUpdate>();
  private readonly validated = new RecentCache<RawDocument, Validated>();
  private readonly compiler: SnapshotCompiler;
  private readonly clock: MeshClock;
  private current: Snapshot | undefined;
  private version = 0;
  private started = false;
  private lastError: MeshConfigError | undefined;
  private readonly deliveredAt = new Map<string, number>();
  private rejection: RejectionStatus | undefined;
  private acceptedAt: number | undefined;
  /** Bumped by every update once started; a reload for an older value is stale. */
  private wanted = 0;
  private reloading: Promise<void> | undefined;
  private running = false;
  /** When the oldest change not yet applied (or rejected) arrived. */
  private waitingSince: number | undefined;
  private closed = false;
  private stager: SnapshotStager | undefined;

  constructor(
    private readonly sources: readonly ConfigSource[],
    private readonly ctx: CompileContext,
    private readonly options: ConfigStoreOptions = {},
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.compiler = new SnapshotCompiler(ctx);
  }

  /** The snapshot in force; undefined only before the first accepted change. */
  get snapshot(): Snapshot | undefined {
    return this.current;
  }

  /**
   * From now on a compiled change becomes current only once `stager` built everything served
   * from it; the snapshot in force when this is called is taken as built.
   */
  stageWith(stager: SnapshotStager): void {
    this.stager = stager;
  }

  /** Starts every source and applies their initial content; throws if it is invalid. */
  async start(): Promise<Snapshot> {
    await Promise.all(this.sources.map((source) => source.start((update) => this.onUpdate(update))));
    this.started = true;
    this.schedule();
    await this.settled();
    if (!this.current) throw this.lastError ?? new MeshConfigError([], 'configuration unavailable');
    return this.current;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.sources.map((s) => s.close()));
    // A reload in progress stops at its next slice.
    await this.reloading;
    this.removeAllListeners();
  }

  /** Resolves when every update delivered so far has been accepted, rejected or superseded. */
  async settled(): Promise<void> {
    while (this.running) await this.reloading;
  }

  /** Each source's last delivery and its findings (validation results are cached: cheap). */
  sourceStatus(): SourceStatus[] {
    return this.sources.map((source) => {
      const update = this.latest.get(source.id);
      const issues = [...(update?.issues ?? [])];
      for (const document of update?.documents ?? []) issues.push(...this.validate(document).issues);
      return { id: source.id, deliveredAt: this.deliveredAt.get(source.id), documents: update?.documents.length ?? 0, issues };
    });
  }

  /** The last rejected change since the last accepted one; undefined when the latest change was accepted. */
  get lastRejection(): RejectionStatus | undefined {
    return this.rejection;
  }

  /** Wall-clock ms when the snapshot in force was accepted. */
  get snapshotAcceptedAt(): number | undefined {
    return this.acceptedAt;
  }

  private onUpdate(update: SourceUpdate): void {
    this.latest.set(update.source, update);
    this.deliveredAt.set(update.source, this.clock.wallNow());
    // Before start() finishes, sources deliver their initial content; apply it once, together.
    if (this.started) this.schedule();
  }

  private schedule(): void {
    if (this.closed) return;
    this.wanted += 1;
    this.waitingSince ??= performance.now();
    if (this.running) return;
    this.running = true;
    this.reloading = this.reload();
  }

  /** Reloads until the latest update is applied; a newer update abandons the reload in progress. */
  private async reload(): Promise<void> {
    let done = 0;
    try {
      while (!this.closed && done !== this.wanted) {
        // Updates delivered in this same turn (several sources, a burst of watch events) join in.
        await nextTurn();
        if (this.closed) return;
        // The reload compiles what the sources hold at its start.
        const target = this.wanted;
        let outcome: Outcome | typeof STOPPED;
        try {
          outcome = await runInSlices(this.build(), {
            ...(this.options.sliceMs !== undefined ? { sliceMs: this.options.sliceMs } : {}),
            stop: () => this.closed || (target !== this.wanted && !this.overdue()),
          });
        } catch (cause) {
          // A compiler bug must not take the mesh down: report it as a rejection.
          outcome = { rejected: [{ severity: 'error', code: 'internal', message: `compilation failed: ${String(cause)}` }] };
        }
        if (outcome === STOPPED) continue;
        this.validated.passed();
        done = target;
        this.waitingSince = done === this.wanted ? undefined : performance.now();
        if ('snapshot' in outcome) this.accept(outcome.snapshot);
        else this.reject(outcome.rejected);
      }
    } finally {
      // Cleared in the same turn as the last check: an update delivered after it starts a new reload.
      this.running = false;
    }
  }

  private overdue(): boolean {
    const waited = performance.now() - (this.waitingSince ?? performance.now());
    return waited >= (this.options.supersedeForMs ?? DEFAULT_SUPERSEDE_FOR_MS);
  }

  /** What each source last delivered, in the order the sources were given (their precedence). */
  private *ordered(): Iterable<SourceUpdate> {
    for (const source of this.sources) {
      const update = this.latest.get(source.id);
      if (update) yield update;
    }
    for (const [id, update] of this.latest) {
      if (!this.sources.some((s) => s.id === id)) yield update;
    }
  }

  private validate(document: RawDocument): Validated {
    let result = this.validated.get(document);
    if (!result) {
      const { resource, issues } = validateDocument(document, { defaultNamespace: this.ctx.namespace });
      result = { resource, key: resource ? resourceKey(resource) : '', issues };
      this.validated.set(document, result);
    }
    return result;
  }

  /** Validates and compiles everything the sources hold now, in steps. */
  private *build(): Steps<Outcome> {
    const issues: ConfigIssue[] = [];
    const resources: MeshResource[] = [];
    const seen = new Map<string, { resource: MeshResource; source: string }>();
    const pace = every(128);
    for (const update of [...this.ordered()]) {
      issues.push(...update.issues);
      for (const document of update.documents) {
        // Validating a document is a step; finding its earlier result is a fraction of one.
        let result = this.validated.get(document);
        if (!result || pace()) yield;
        result ??= this.validate(document);
        issues.push(...result.issues);
        const resource = result.resource;
        if (!resource) continue;
        const key = result.key;
        const first = seen.get(key);
        const twin = first?.resource;
        if (twin && first.source !== update.source) {
          // Across sources the first one wins, as in Istio's aggregate config store: a file can
          // override what the cluster says without the whole change being rejected.
          issues.push({
            severity: 'warning',
            code: 'shadowed-resource',
            message: `${formatResourceRef(resourceRef(resource))} from ${update.source} is ignored: ${first.source} defines it too${formatLocation(twin.document.location) ? ` (at ${formatLocation(twin.document.location)})` : ''} and comes first`,
            resource: resourceRef(resource),
            path: 'metadata.name',
            location: resource.document.location,
          });
          continue;
        }
        if (twin) {
          issues.push({
            severity: 'error',
            code: 'duplicate-resource',
            message: `${key} is defined twice (also at ${formatLocation(twin.document.location) || 'another source'})`,
            resource: resourceRef(resource),
            path: 'metadata.name',
            location: resource.document.location,
          });
          continue;
        }
        seen.set(key, { resource, source: update.source });
        resources.push(resource);
      }
    }
    if (issues.some((i) => i.severity === 'error')) return { rejected: issues };
    const { snapshot, issues: compileIssues } = yield* this.compiler.steps(resources, this.version + 1);
    const all = [...issues, ...compileIssues];
    if (all.some((i) => i.severity === 'error')) return { rejected: all };
    return { snapshot: Object.freeze({ ...snapshot, warnings: all.filter((i) => i.severity === 'warning') }) };
  }

  /**
   * Makes a compiled snapshot current once everything served from it is built: a build that
   * throws rejects it whole, and nothing of it applies (no half-applied state).
   */
  private accept(snapshot: Snapshot): void {
    let staged: StagedSnapshot | undefined;
    try {
      staged = this.stager?.(snapshot);
    } catch (error) {
      this.reject(error instanceof MeshConfigError ? error.issues : [buildIssue(error)]);
      return;
    }
    this.version = snapshot.version;
    this.current = snapshot;
    this.lastError = undefined;
    this.rejection = undefined;
    this.acceptedAt = this.clock.wallNow();
    if (staged) this.notify('snapshot', () => staged.commit());
    this.notify('snapshot', () => this.emit('snapshot', snapshot));
  }

  /** A listener that throws must not stop later reloads. */
  private notify(event: keyof ConfigStoreEvents, emit: () => void): void {
    try {
      emit();
    } catch (error) {
      process.emitWarning(`sidecarless: a '${event}' listener threw: ${String(error)}`);
    }
  }

  private reject(issues: readonly ConfigIssue[]): void {
    const error = new MeshConfigError(
      issues,
      this.current ? `configuration change rejected, snapshot ${this.current.version} keeps serving` : 'configuration rejected',
    );
    this.lastError = error;
    this.rejection = { at: this.clock.wallNow(), error };
    if (this.listenerCount('rejected') > 0) this.notify('rejected', () => this.emit('rejected', error));
  }
}

/** A failure to build from a snapshot that did not say which resource caused it. */
function buildIssue(error: unknown): ConfigIssue {
  const message = error instanceof Error ? error.message : String(error);
  return { severity: 'error', code: 'build-failed', message: `the configuration could not be applied: ${message}` };
}
