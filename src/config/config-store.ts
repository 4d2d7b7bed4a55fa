import { EventEmitter } from 'node:events';
import type { MeshClock } from '../clock.js';
import { systemClock } from '../clock.js';
import { MeshConfigError } from '../errors.js';
import type { CompileContext } from './compile/context.js';
import { SnapshotCompiler } from './compile/compile-snapshot.js';
import type { RawDocument } from './document.js';
import type { ConfigIssue } from './issue.js';
import { formatLocation, formatResourceRef } from './issue.js';
import type { MeshResource } from './resource.js';
import { resourceKey, resourceRef } from './resource.js';
import type { Snapshot } from './snapshot.js';
import type { ConfigSource, SourceUpdate } from './sources/source.js';
import { validateDocument } from './validate/index.js';

export interface ConfigStoreEvents {
  /** A change was accepted and its snapshot now serves. */
  snapshot: [snapshot: Snapshot];
  /** A change was rejected whole; the previous snapshot keeps serving. */
  rejected: [error: MeshConfigError];
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
  readonly issues: readonly ConfigIssue[];
}

/**
 * Holds what every source last delivered, validates and compiles it into snapshots, and swaps
 * them in atomically. A change with any error is rejected whole and the last good snapshot stays.
 */
export class ConfigStore extends EventEmitter<ConfigStoreEvents> {
  private readonly latest = new Map<string, SourceUpdate>();
  private readonly validated = new WeakMap<RawDocument, Validated>();
  private readonly compiler: SnapshotCompiler;
  private current: Snapshot | undefined;
  private version = 0;
  private started = false;
  private lastError: MeshConfigError | undefined;
  private readonly deliveredAt = new Map<string, number>();
  private rejection: RejectionStatus | undefined;
  private acceptedAt: number | undefined;

  constructor(
    private readonly sources: readonly ConfigSource[],
    private readonly ctx: CompileContext,
    /** Wall-clock time of deliveries, acceptances and rejections, for inspection. */
    private readonly clock: MeshClock = systemClock,
  ) {
    super();
    this.compiler = new SnapshotCompiler(ctx);
  }

  /** The snapshot in force; undefined only before the first accepted change. */
  get snapshot(): Snapshot | undefined {
    return this.current;
  }

  /** Starts every source and applies their initial content; throws if it is invalid. */
  async start(): Promise<Snapshot> {
    await Promise.all(this.sources.map((source) => source.start((update) => this.onUpdate(update))));
    this.started = true;
    this.apply();
    if (!this.current) throw this.lastError ?? new MeshConfigError([], 'configuration unavailable');
    return this.current;
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.close()));
    this.removeAllListeners();
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
    if (this.started) this.apply();
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
      result = { resource, issues };
      this.validated.set(document, result);
    }
    return result;
  }

  /** Validates and compiles everything the sources hold now. Never throws. */
  private apply(): void {
    const issues: ConfigIssue[] = [];
    const resources: MeshResource[] = [];
    const seen = new Map<string, { resource: MeshResource; source: string }>();
    for (const update of this.ordered()) {
      issues.push(...update.issues);
      for (const document of update.documents) {
        const result = this.validate(document);
        issues.push(...result.issues);
        const resource = result.resource;
        if (!resource) continue;
        const key = resourceKey(resource);
        const twin = seen.get(key)?.resource;
        if (twin && seen.get(key)?.source !== update.source) {
          // Across sources the first one wins, as in Istio's aggregate config store: a file can
          // override what the cluster says without the whole change being rejected.
          issues.push({
            severity: 'warning',
            code: 'shadowed-resource',
            message: `${formatResourceRef(resourceRef(resource))} from ${update.source} is ignored: ${seen.get(key)?.source} defines it too${formatLocation(twin.document.location) ? ` (at ${formatLocation(twin.document.location)})` : ''} and comes first`,
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
    if (issues.some((i) => i.severity === 'error')) {
      this.reject(issues);
      return;
    }
    try {
      const { snapshot, issues: compileIssues } = this.compiler.compile(resources, this.version + 1);
      const all = [...issues, ...compileIssues];
      if (all.some((i) => i.severity === 'error')) {
        this.reject(all);
        return;
      }
      this.version += 1;
      this.current = Object.freeze({ ...snapshot, warnings: all.filter((i) => i.severity === 'warning') });
      this.lastError = undefined;
      this.rejection = undefined;
      this.acceptedAt = this.clock.wallNow();
      this.emit('snapshot', this.current);
    } catch (cause) {
      // A compiler bug must not take the mesh down: report it as a rejection.
      this.reject([{ severity: 'error', code: 'internal', message: `compilation failed: ${String(cause)}` }]);
    }
  }

  private reject(issues: readonly ConfigIssue[]): void {
    const error = new MeshConfigError(
      issues,
      this.current ? `configuration change rejected, snapshot ${this.current.version} keeps serving` : 'configuration rejected',
    );
    this.lastError = error;
    this.rejection = { at: this.clock.wallNow(), error };
    if (this.listenerCount('rejected') > 0) this.emit('rejected', error);
  }
}
