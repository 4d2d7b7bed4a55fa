import { readFile } from 'node:fs/promises';
import type { CancelTimer, MeshClock } from '../../clock.js';
import { repeat, systemClock } from '../../clock.js';
import { MeshClosedError } from '../../errors.js';
import type { RawDocument } from '../document.js';
import type { ConfigIssue } from '../issue.js';
import { DirectoryWatchers } from './directory-watchers.js';
import { scanPaths, sourceIssue } from './file-scan.js';
import type { ScanResult, ScannedFile } from './file-scan.js';
import type * as ParseConfigText from './parse-config-text.js';
import type { ConfigSource, SourceUpdate } from './source.js';

export interface FileSourceOptions {
  /** Watch the paths and deliver an update after each change. Default true. */
  readonly watch?: boolean;
  /** Quiet time after the last file-system event before rescanning, in ms. Default 100. */
  readonly debounceMs?: number;
  /**
   * How often to check file sizes and modification times in case `fs.watch` missed a change (it
   * does on some network and container file systems), in ms. Default 2000; 0 turns polling off.
   */
  readonly pollIntervalMs?: number;
  /** Source id in updates and messages. Default `file:` followed by the paths. */
  readonly id?: string;
  /** The debounce and poll timers (background: they never keep the process alive). Default the system clock. */
  readonly clock?: MeshClock;
}

/** The parse of one file's content, reused while the content stays the same. */
interface FileResult {
  readonly hash: string;
  readonly documents: readonly RawDocument[];
  readonly issues: readonly ConfigIssue[];
}

interface LoadedContent {
  readonly files: readonly FileResult[];
  /** Problems not tied to a file's content (missing paths, unreadable files). */
  readonly issues: readonly ConfigIssue[];
}

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_POLL_INTERVAL_MS = 2_000;

/**
 * Configuration from YAML and JSON files and directories, watched for changes. Kubernetes ConfigMap
 * and Secret volumes are read through their top-level symlinks and followed across the kubelet's
 * atomic `..data` swap. Files whose content did not change keep their parse, so their documents are
 * the same objects in every update.
 */
export class FileSource implements ConfigSource {
  readonly id: string;
  private readonly paths: readonly string[];
  private readonly watchEnabled: boolean;
  private readonly debounceMs: number;
  private readonly pollIntervalMs: number;
  /** Parses by user-visible path: a Kubernetes volume changes real paths on every swap. */
  private cache = new Map<string, FileResult>();
  private emitted: LoadedContent | undefined;
  private statSignature = '';
  private onUpdate: ((update: SourceUpdate) => void) | undefined;
  private watchers: DirectoryWatchers | undefined;
  private debounceTimer: CancelTimer | undefined;
  private firstEventAt: number | undefined;
  private pollTimer: CancelTimer | undefined;
  private readonly clock: MeshClock;
  private rescanning: Promise<void> | undefined;
  private rescanAgain = false;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(paths: readonly string[], options: FileSourceOptions = {}) {
    this.paths = [...paths];
    this.id = options.id ?? `file:${paths.join(',')}`;
    this.watchEnabled = options.watch ?? true;
    this.debounceMs = Math.max(0, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.pollIntervalMs = Math.max(0, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    this.clock = options.clock ?? systemClock;
  }

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    if (this.onUpdate) throw new Error(`config source ${this.id} was already started`);
    if (this.closed) throw new MeshClosedError(`config source ${this.id} is closed`);
    this.onUpdate = onUpdate;
    const scan = await scanPaths(this.paths);
    const content = await this.load(scan);
    if (this.closed) return;
    this.emitted = content;
    onUpdate(this.toUpdate(content));
    if (this.watchEnabled) this.startWatching(scan);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers?.close();
    this.debounceTimer?.();
    this.pollTimer?.();
    // Let an in-flight scan finish its file reads so no handle outlives close(); it will not emit.
    await Promise.allSettled([this.rescanning, this.polling]);
  }

  private startWatching(scan: ScanResult): void {
    this.watchers = new DirectoryWatchers(() => this.schedule(), undefined, this.clock);
    this.watchers.update(scan.watchTargets);
    if (this.pollIntervalMs > 0) {
      this.pollTimer = repeat(this.clock, this.pollIntervalMs, () => this.poll());
    }
    // Changes made between the initial scan and the watchers' start are seen by this first check.
    this.poll();
  }

  /** Rescans after `debounceMs` of quiet, but never later than a few debounce periods after the first event. */
  private schedule(): void {
    if (this.closed) return;
    const now = this.clock.now();
    this.firstEventAt ??= now;
    const due = Math.min(now + this.debounceMs, this.firstEventAt + Math.max(this.debounceMs * 5, 500));
    this.debounceTimer?.();
    this.debounceTimer = this.clock.schedule(Math.max(0, due - now), () => this.runRescan(), 'background');
  }

  private runRescan(): void {
    this.debounceTimer = undefined;
    this.firstEventAt = undefined;
    if (this.closed) return;
    if (this.rescanning) {
      this.rescanAgain = true;
      return;
    }
    this.rescanning = this.rescan().finally(() => {
      this.rescanning = undefined;
      if (this.rescanAgain) {
        this.rescanAgain = false;
        this.schedule();
      }
    });
  }

  private async rescan(): Promise<void> {
    try {
      const scan = await scanPaths(this.paths);
      const content = await this.load(scan);
      if (this.closed) return;
      this.watchers?.update(scan.watchTargets);
      if (this.emitted && sameContent(this.emitted, content)) return;
      this.emitted = content;
      this.deliver(this.toUpdate(content));
    } catch (error) {
      // Scans turn file-system failures into issues; anything else is a bug, and must not kill the process.
      process.emitWarning(`sidecarless: rescanning ${this.id} failed: ${String(error)}`);
    }
  }

  /** Stats only: cheap enough to run every few seconds, and a difference triggers a real rescan. */
  private poll(): void {
    if (this.closed || this.polling) return;
    this.polling = scanPaths(this.paths)
      .then((scan) => {
        if (!this.closed && statSignature(scan) !== this.statSignature) this.schedule();
      })
      .catch(() => undefined)
      .finally(() => {
        this.polling = undefined;
      });
  }

  private deliver(update: SourceUpdate): void {
    try {
      this.onUpdate?.(update);
    } catch (error) {
      process.emitWarning(`sidecarless: the update handler of ${this.id} threw: ${String(error)}`);
    }
  }

  private async load(scan: ScanResult): Promise<LoadedContent> {
    const issues: ConfigIssue[] = [...scan.issues];
    const files: FileResult[] = [];
    const cache = new Map<string, FileResult>();
    for (const file of scan.files) {
      const result = await this.loadFile(file, issues);
      if (!result) continue;
      files.push(result);
      cache.set(file.path, result);
    }
    this.cache = cache;
    this.statSignature = statSignature(scan);
    return { files, issues };
  }

  private async loadFile(file: ScannedFile, issues: ConfigIssue[]): Promise<FileResult | undefined> {
    let text: string;
    try {
      text = await readFile(file.path, 'utf8');
    } catch (error) {
      issues.push(sourceIssue(file.path, error));
      return undefined;
    }
    const hash = (await loadParser()).contentHash(text);
    const cached = this.cache.get(file.path);
    if (cached?.hash === hash) return cached;
    const parsed = (await loadParser()).parseConfigText(text, file.path);
    return { hash, documents: parsed.documents, issues: parsed.issues };
  }

  private toUpdate(content: LoadedContent): SourceUpdate {
    return {
      source: this.id,
      documents: content.files.flatMap((file) => file.documents),
      issues: [...content.issues, ...content.files.flatMap((file) => file.issues)],
    };
  }
}

function sameContent(a: LoadedContent, b: LoadedContent): boolean {
  return (
    a.files.length === b.files.length &&
    a.files.every((file, i) => file === b.files[i]) &&
    JSON.stringify(a.issues) === JSON.stringify(b.issues)
  );
}

function statSignature(scan: ScanResult): string {
  const files = scan.files.map((f) => `${f.path}\0${f.realPath}\0${f.size}\0${f.mtimeMs}\0${f.ino}`);
  const issues = scan.issues.map((i) => `${i.severity}\0${i.message}`);
  return [...files, '\u0001', ...issues].join('\n');
}

let parser: Promise<typeof ParseConfigText> | undefined;

/**
 * The YAML parser (and node:crypto, for the content hash), loaded with the first file read: an
 * application configured in code never loads them.
 */
function loadParser(): Promise<typeof ParseConfigText> {
  return (parser ??= import('./parse-config-text.js'));
}
