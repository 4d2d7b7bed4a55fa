import { readFile } from 'node:fs/promises';
import type { CancelTimer, MeshClock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import { MeshClosedError } from '../../errors.js';
import type { RawDocument } from '../document.js';
import type { ConfigIssue } from '../../issue.js';
import { STOPPED, runInSlices } from '../slices.js';
import { DirectoryWatchers } from './directory-watchers.js';
import { scanPaths, sourceIssue } from './file-scan.js';
import type { ScanResult } from './file-scan.js';
import type * as ParseConfigText from './parse-config-text.js';
import type { ConfigSource, SourceUpdate } from './source.js';

export interface FileSourceOptions {
  /** Watch the paths and deliver an update after each change. Default true. */
  readonly watch?: boolean;
  /** Quiet time after the last file-system event before rescanning, in ms. Default 100. */
  readonly debounceMs?: number;
  /**
   * A changed file is applied once it holds still: read again this long after a change was read,
   * it must not have changed again. Default: `debounceMs`.
   */
  readonly settleMs?: number;
  /**
   * Changed content that does not parse is most often a file still being written: it is read
   * again every `settleMs` for up to this long before its error is reported, in ms. Content that
   * keeps changing is applied at the latest this long after the change was first read. Default 2000.
   */
  readonly parseGraceMs?: number;
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

/** One file as read: its text is parsed only once the content is known to hold still. */
interface FileText {
  readonly path: string;
  readonly hash: string;
  readonly text: string;
}

/** The files read by one scan, and the problems not tied to a file's content (missing paths, unreadable files). */
interface ReadContent {
  readonly files: readonly FileText[];
  readonly issues: readonly ConfigIssue[];
  /** Paths and content hashes in order, and the issues: equal signatures, equal content. */
  readonly signature: string;
}

interface LoadedContent {
  readonly files: readonly FileResult[];
  readonly issues: readonly ConfigIssue[];
}

const DEFAULT_DEBOUNCE_MS = 100;
const DEFAULT_PARSE_GRACE_MS = 2_000;
const DEFAULT_POLL_INTERVAL_MS = 2_000;

/**
 * Configuration from YAML and JSON files and directories, watched for changes. Kubernetes ConfigMap
 * and Secret volumes are read through their top-level symlinks and followed across the kubelet's
 * atomic `..data` swap. Files whose content did not change keep their parse, so their documents are
 * the same objects in every update.
 *
 * A file written in several steps (a slow copy, a program writing in parts) is not applied half
 * written: a change is delivered only once two reads `settleMs` apart agree, and content that does
 * not parse is given up to `parseGraceMs` to be completed before its error is delivered. Large
 * files are parsed a few milliseconds at a time, between other work.
 */
export class FileSource implements ConfigSource {
  readonly id: string;
  private readonly paths: readonly string[];
  private readonly watchEnabled: boolean;
  private readonly debounceMs: number;
  private readonly settleMs: number;
  private readonly parseGraceMs: number;
  private readonly pollIntervalMs: number;
  private readonly clock: MeshClock;
  /** Parses by user-visible path: a Kubernetes volume changes real paths on every swap. */
  private cache = new Map<string, FileResult>();
  private emittedSignature: string | undefined;
  /** A change read but not delivered yet: what it looked like, and since when changes have been read. */
  private settling: { readonly signature: string; readonly since: number } | undefined;
  private statSignature = '';
  private pollAgain = false;
  private onUpdate: ((update: SourceUpdate) => void) | undefined;
  private watchers: DirectoryWatchers | undefined;
  private cancelRescan: CancelTimer | undefined;
  private firstEventAt: number | undefined;
  private cancelPoll: CancelTimer | undefined;
  private rescanning: Promise<void> | undefined;
  private rescanAgain = false;
  private polling: Promise<void> | undefined;
  private closed = false;

  constructor(paths: readonly string[], options: FileSourceOptions = {}) {
    this.paths = [...paths];
    this.id = options.id ?? `file:${paths.join(',')}`;
    this.watchEnabled = options.watch ?? true;
    this.debounceMs = Math.max(0, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
    this.settleMs = Math.max(0, options.settleMs ?? this.debounceMs);
    this.parseGraceMs = Math.max(0, options.parseGraceMs ?? DEFAULT_PARSE_GRACE_MS);
    this.pollIntervalMs = Math.max(0, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    this.clock = options.clock ?? systemClock;
  }

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    if (this.onUpdate) throw new Error(`config source ${this.id} was already started`);
    if (this.closed) throw new MeshClosedError(`config source ${this.id} is closed`);
    this.onUpdate = onUpdate;
    const scan = await scanPaths(this.paths);
    const read = await this.read(scan);
    const content = await this.parse(read);
    if (this.closed || !content) return;
    this.emittedSignature = read.signature;
    onUpdate(this.toUpdate(content));
    if (this.watchEnabled) this.startWatching(scan);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watchers?.close();
    this.cancelRescan?.();
    this.cancelPoll?.();
    // Let an in-flight scan finish its file reads so no handle outlives close(); it will not emit.
    await Promise.allSettled([this.rescanning, this.polling]);
  }

  private startWatching(scan: ScanResult): void {
    this.watchers = new DirectoryWatchers(() => this.schedule(), undefined, this.clock);
    this.watchers.update(scan.watchTargets);
    if (this.pollIntervalMs > 0) this.schedulePoll();
    // Changes made between the initial scan and the watchers' start are seen by this first check.
    this.poll();
  }

  private schedulePoll(): void {
    this.cancelPoll = this.clock.schedule(
      this.pollIntervalMs,
      () => {
        if (this.closed) return;
        this.poll();
        this.schedulePoll();
      },
      'background',
    );
  }

  /** Rescans after `debounceMs` of quiet, but never later than a few debounce periods after the first event. */
  private schedule(): void {
    if (this.closed) return;
    const now = this.clock.now();
    this.firstEventAt ??= now;
    const latest = this.firstEventAt + Math.max(this.debounceMs * 5, 500);
    this.rescanIn(Math.max(0, Math.min(this.debounceMs, latest - now)));
  }

  private rescanIn(delayMs: number): void {
    this.cancelRescan?.();
    this.cancelRescan = this.clock.schedule(delayMs, () => this.runRescan(), 'background');
  }

  private runRescan(): void {
    this.cancelRescan = undefined;
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
      const read = await this.read(scan);
      if (this.closed) return;
      this.watchers?.update(scan.watchTargets);
      if (read.signature === this.emittedSignature) {
        this.settling = undefined;
        return;
      }
      const now = this.clock.now();
      const since = this.settling?.since ?? now;
      const late = now - since >= this.parseGraceMs;
      if (this.settling?.signature !== read.signature && !late) {
        // First read of this content: it is applied if it is still the same one settle period on.
        this.settling = { signature: read.signature, since };
        this.recheck();
        return;
      }
      const content = await this.parse(read);
      if (this.closed || !content) return;
      if (!late && content.files.some((file) => file.issues.some((issue) => issue.severity === 'error'))) {
        // Most likely still being written: look again before reporting it.
        this.settling = { signature: read.signature, since };
        this.recheck();
        return;
      }
      this.settling = undefined;
      this.emittedSignature = read.signature;
      this.deliver(this.toUpdate(content));
    } catch (error) {
      // Scans turn file-system failures into issues; anything else is a bug, and must not kill the process.
      process.emitWarning(`sidecarless: rescanning ${this.id} failed: ${String(error)}`);
    }
  }

  /** Reads again after `settleMs`, unless a file-system event has already asked for a rescan. */
  private recheck(): void {
    if (this.closed || this.cancelRescan) return;
    this.rescanIn(this.settleMs);
  }

  /** Stats only: cheap enough to run every few seconds, and a difference triggers a real rescan. */
  private poll(): void {
    if (this.closed) return;
    if (this.polling) {
      // A check asked for while one is under way runs after it: a scan that started before a
      // change must not answer for a check asked for after it.
      this.pollAgain = true;
      return;
    }
    this.polling = scanPaths(this.paths)
      .then((scan) => {
        if (!this.closed && statSignature(scan) !== this.statSignature) this.schedule();
      })
      .catch(() => undefined)
      .finally(() => {
        this.polling = undefined;
        if (this.pollAgain) {
          this.pollAgain = false;
          this.poll();
        }
      });
  }

  private deliver(update: SourceUpdate): void {
    try {
      this.onUpdate?.(update);
    } catch (error) {
      process.emitWarning(`sidecarless: the update handler of ${this.id} threw: ${String(error)}`);
    }
  }

  private async read(scan: ScanResult): Promise<ReadContent> {
    const issues: ConfigIssue[] = [...scan.issues];
    const files: FileText[] = [];
    for (const file of scan.files) {
      try {
        const text = await readFile(file.path, 'utf8');
        files.push({ path: file.path, text, hash: (await loadParser()).contentHash(text) });
      } catch (error) {
        issues.push(sourceIssue(file.path, error));
      }
    }
    this.statSignature = statSignature(scan);
    const signature = JSON.stringify([files.map((f) => [f.path, f.hash]), issues.map((i) => [i.severity, i.code, i.message, i.location])]);
    return { files, issues, signature };
  }

  /** Parses what changed since the last parse, a few ms at a time; undefined once closed. */
  private async parse(read: ReadContent): Promise<LoadedContent | undefined> {
    const files: FileResult[] = [];
    const cache = new Map<string, FileResult>();
    for (const file of read.files) {
      let result = this.cache.get(file.path);
      if (result?.hash !== file.hash) {
        const parsed = await runInSlices((await loadParser()).parseConfigTextSteps(file.text, file.path), { stop: () => this.closed });
        if (parsed === STOPPED) return undefined;
        result = { hash: file.hash, documents: parsed.documents, issues: parsed.issues };
      }
      files.push(result);
      cache.set(file.path, result);
    }
    this.cache = cache;
    return { files, issues: read.issues };
  }

  private toUpdate(content: LoadedContent): SourceUpdate {
    return {
      source: this.id,
      documents: content.files.flatMap((file) => file.documents),
      issues: [...content.issues, ...content.files.flatMap((file) => file.issues)],
    };
  }
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
