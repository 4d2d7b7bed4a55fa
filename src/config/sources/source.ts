import type { RawDocument } from '../document.js';
import type { ConfigIssue } from '../../issue.js';

/**
 * The full current content of one source. Each update replaces everything that source delivered
 * before. Documents that did not change keep their object identity across updates, so validation
 * and compilation can reuse their earlier results.
 */
export interface SourceUpdate {
  readonly source: string;
  readonly documents: readonly RawDocument[];
  /** Problems reading or parsing (file missing, YAML syntax); an error rejects the whole change. */
  readonly issues: readonly ConfigIssue[];
}

/**
 * Where configuration comes from: files and directories, inline objects, later the Kubernetes API.
 * `start` delivers the initial content through `onUpdate` before it resolves, then further updates
 * whenever the content changes (if the source watches). `close` stops every watcher and timer.
 */
export interface ConfigSource {
  readonly id: string;
  start(onUpdate: (update: SourceUpdate) => void): Promise<void>;
  close(): Promise<void>;
}
