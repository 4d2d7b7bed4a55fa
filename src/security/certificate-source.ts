import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { CancelTimer, Clock, MeshClock } from '../clock.js';
import { meshClock, repeat } from '../clock.js';
import type { CertificateFiles } from './certificate-bundle.js';
import { CertificateError } from './errors.js';

/**
 * Where a workload's certificate chain, key and roots come from. The mesh reads the whole set on
 * start and again whenever `watch` signals a change, and validates each set before using it. The
 * mounted-file source is {@link FileCertificateSource}; a Kubernetes Secret read through the API
 * (`credentialName`) plugs in here the same way.
 */
export interface CertificateSource {
  /** For messages and metrics, e.g. `istio:/etc/certs`. */
  readonly id: string;
  /**
   * One consistent set of the three parts. Throws a {@link CertificateError} (`missing`,
   * `unreadable`) naming the part that cannot be read.
   */
  read(): Promise<CertificateFiles>;
  /** Calls `onChange` when the parts may have changed (spurious calls are fine); returns a stop function. */
  watch(onChange: () => void): () => void;
}

/** The paths of the three parts. */
export interface CertificatePaths {
  readonly chain: string;
  readonly key: string;
  readonly roots: string;
}

export interface FileCertificateSourceOptions {
  /** How often the files are stat'ed in case `fs.watch` missed a change, in ms. Default 2000; 0 turns polling off. */
  readonly pollIntervalMs?: number;
  /** Runs the poll (a background timer). Default the system clock; the mesh passes its own. */
  readonly clock?: Clock;
}

const DEFAULT_POLL_INTERVAL_MS = 2_000;
/** A set read across a `..data` swap is read again, at most this many times. */
const READ_ATTEMPTS = 3;

/**
 * The chain, key and roots from files, typically a mounted Secret or an agent's output directory.
 * Kubernetes updates a Secret volume by writing a new timestamped directory and renaming the
 * `..data` symlink over to it; the visible names are symlinks through `..data`. Each file is read
 * through its resolved path and the set is read again if a swap happened meanwhile, so the three
 * parts always come from one version.
 */
export class FileCertificateSource implements CertificateSource {
  private readonly pollIntervalMs: number;
  private readonly clock: MeshClock;

  constructor(
    readonly id: string,
    readonly paths: CertificatePaths,
    options: FileCertificateSourceOptions = {},
  ) {
    this.pollIntervalMs = Math.max(0, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    this.clock = meshClock(options.clock);
  }

  async read(): Promise<CertificateFiles> {
    let lastError: unknown;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      try {
        const before = (await this.resolveAll()) as [string, string, string];
        const [chain, key, roots] = await Promise.all([
          readPart(this.paths.chain, before[0]),
          readPart(this.paths.key, before[1]),
          readPart(this.paths.roots, before[2]),
        ]);
        const after = await this.resolveAll();
        if (after.every((p, i) => p === before[i])) return { chain, key, roots };
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError instanceof CertificateError
      ? lastError
      : new CertificateError('unreadable', this.paths.chain, 'the files kept changing while being read', { cause: lastError });
  }

  private resolveAll(): Promise<string[]> {
    return Promise.all([this.paths.chain, this.paths.key, this.paths.roots].map(resolvePart));
  }

  watch(onChange: () => void): () => void {
    return watchFiles([this.paths.chain, this.paths.key, this.paths.roots], onChange, this.pollIntervalMs, this.clock);
  }
}

/**
 * Calls `onChange` when one of `paths` may have changed: the directories are watched (a `..data`
 * swap replaces what the names point to) and the files stat'ed every `pollIntervalMs` (0: never)
 * in case the watch missed it. Returns a stop function.
 */
export function watchFiles(paths: readonly string[], onChange: () => void, pollIntervalMs: number, clock: MeshClock): () => void {
  const watchers: FSWatcher[] = [];
  for (const dir of new Set(paths.map((p) => dirname(p)))) {
    try {
      const watcher = watch(dir, { persistent: false }, () => onChange());
      watcher.on('error', () => watcher.close());
      watchers.push(watcher);
    } catch {
      // Missing directory, inotify limits: the poll below covers it.
    }
  }
  let signature: string | undefined;
  let polling = false;
  const stopPolling: CancelTimer | undefined =
    pollIntervalMs > 0
      ? repeat(clock, pollIntervalMs, () => {
          if (polling) return;
          polling = true;
          void statSignature(paths).then((s) => {
            polling = false;
            if (signature !== undefined && s !== signature) onChange();
            signature = s;
          });
        })
      : undefined;
  void statSignature(paths).then((s) => {
    signature ??= s;
  });
  return () => {
    stopPolling?.();
    for (const w of watchers) w.close();
  };
}

async function statSignature(paths: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map(async (p) => {
      try {
        const real = await realpath(p);
        const s = await stat(real);
        return `${real}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch (error) {
        return `${p}:${(error as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    }),
  );
  return parts.join('|');
}

async function resolvePart(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (error) {
    throw partError(path, error);
  }
}

async function readPart(path: string, real: string): Promise<{ path: string; pem: string }> {
  try {
    return { path, pem: await readFile(real, 'utf8') };
  } catch (error) {
    throw partError(path, error);
  }
}

function partError(path: string, error: unknown): CertificateError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new CertificateError('missing', path, 'no such file', { cause: error });
  if (code === 'EISDIR') return new CertificateError('unreadable', path, 'is a directory, not a file', { cause: error });
  return new CertificateError('unreadable', path, `cannot be read (${code ?? (error as Error).message})`, { cause: error });
}
