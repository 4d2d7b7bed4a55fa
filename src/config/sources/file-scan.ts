import { readdir, realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { ConfigIssue } from '../../issue.js';

const CONFIG_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);

/** One configuration file found by a scan. */
export interface ScannedFile {
  /** The path as the user will see it: the configured path, joined with names below it. */
  readonly path: string;
  readonly realPath: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
}

/**
 * Which entries of a directory matter for change detection: all of them (a directory that is read),
 * or some names (the parent of a configured path, the directory a symlinked file resolves into).
 * Names starting with `..` always matter: that is how Kubernetes swaps mounted ConfigMaps.
 */
export interface WatchTarget {
  /** Inode and birth time: a directory deleted and created again is a new one, even on the same inode. */
  readonly identity: string;
  readonly names: ReadonlySet<string> | 'all';
}

export interface ScanResult {
  readonly files: readonly ScannedFile[];
  readonly issues: readonly ConfigIssue[];
  readonly watchTargets: ReadonlyMap<string, WatchTarget>;
}

export function isConfigFileName(name: string): boolean {
  return CONFIG_EXTENSIONS.has(extname(name).toLowerCase());
}

/**
 * Lists the configuration files under `paths` in a stable order, each real file once. Directories
 * are read recursively; entries whose name starts with `.` are skipped, which also skips the
 * `..data` and `..2026_...` entries of a Kubernetes volume, whose files are read through the
 * top-level symlinks instead. Problems become issues; nothing throws.
 */
export async function scanPaths(paths: readonly string[]): Promise<ScanResult> {
  const scan = new Scan();
  for (const path of paths) await scan.root(path);
  return { files: scan.files, issues: scan.issues, watchTargets: await scan.targets() };
}

class Scan {
  readonly files: ScannedFile[] = [];
  readonly issues: ConfigIssue[] = [];
  private readonly seenFiles = new Set<string>();
  private readonly seenDirs = new Set<string>();
  private readonly allDirs = new Map<string, string>();
  private readonly someNames = new Map<string, Set<string>>();

  async root(path: string): Promise<void> {
    // The parent tells us when the configured path appears, disappears or is replaced.
    this.interest(dirname(resolve(path)), basename(resolve(path)));
    let stats: Stats;
    try {
      stats = await stat(path);
    } catch (error) {
      this.issues.push(sourceIssue(path, error));
      return;
    }
    if (stats.isDirectory()) await this.directory(path, stats);
    else if (stats.isFile()) await this.file(path, stats);
    else this.issues.push({ severity: 'error', code: 'source', message: `${path} is neither a file nor a directory`, location: { file: path } });
  }

  async targets(): Promise<Map<string, WatchTarget>> {
    const targets = new Map<string, WatchTarget>();
    for (const [dir, identity] of this.allDirs) targets.set(dir, { identity, names: 'all' });
    for (const [dir, names] of this.someNames) {
      if (targets.has(dir)) continue;
      const identity = await stat(dir).then(directoryIdentity, () => undefined);
      if (identity !== undefined) targets.set(dir, { identity, names });
    }
    return targets;
  }

  private interest(dir: string, name: string): void {
    let names = this.someNames.get(dir);
    if (!names) this.someNames.set(dir, (names = new Set()));
    names.add(name);
  }

  private async directory(path: string, stats: Stats): Promise<void> {
    let real: string;
    let entries;
    try {
      real = await realpath(path);
      // A directory reached twice (symlink loop, two symlinks to one place) is read once.
      if (this.seenDirs.has(real)) return;
      this.seenDirs.add(real);
      entries = await readdir(path, { withFileTypes: true });
    } catch (error) {
      this.issues.push(sourceIssue(path, error));
      return;
    }
    this.allDirs.set(real, directoryIdentity(stats));
    const names = entries.map((entry) => entry.name).filter((name) => !name.startsWith('.'));
    names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) await this.entry(join(path, name), name);
  }

  private async entry(path: string, name: string): Promise<void> {
    let stats: Stats;
    try {
      stats = await stat(path);
    } catch (error) {
      // Listed a moment ago but cannot be followed: a dangling symlink, which is also what a
      // Kubernetes volume shows for a moment while it swaps data. Worth a warning, not a rejection.
      if (isConfigFileName(name)) {
        const message = errorCode(error) === 'ENOENT' ? `${path} is a symbolic link to nothing; skipped` : `${describeError(path, error)}; skipped`;
        this.issues.push({ severity: 'warning', code: 'source', message, location: { file: path } });
      }
      return;
    }
    if (stats.isDirectory()) await this.directory(path, stats);
    else if (stats.isFile() && isConfigFileName(name)) await this.file(path, stats);
  }

  private async file(path: string, stats: Stats): Promise<void> {
    let real: string;
    try {
      real = await realpath(path);
    } catch (error) {
      this.issues.push(sourceIssue(path, error));
      return;
    }
    if (this.seenFiles.has(real)) return;
    this.seenFiles.add(real);
    // Edits behind a symlink happen in the directory the link resolves into.
    this.interest(dirname(real), basename(real));
    this.files.push({ path, realPath: real, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino });
  }
}

export function sourceIssue(path: string, error: unknown): ConfigIssue {
  return { severity: 'error', code: 'source', message: describeError(path, error), location: { file: path } };
}

function describeError(path: string, error: unknown): string {
  switch (errorCode(error)) {
    case 'ENOENT':
    case 'ENOTDIR':
      return `${path} does not exist`;
    case 'EACCES':
    case 'EPERM':
      return `${path} cannot be read: permission denied`;
    case 'ELOOP':
      return `${path} cannot be read: too many levels of symbolic links (a symlink loop?)`;
    default:
      return `${path} cannot be read: ${error instanceof Error ? error.message : String(error)}`;
  }
}

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

function directoryIdentity(stats: Stats): string {
  return `${stats.dev}:${stats.ino}:${stats.birthtimeMs}`;
}
