import { MeshError } from '../errors.js';
import type { ConfigIssue } from '../issue.js';
import { formatIssue } from '../issue.js';

/**
 * A configuration change was rejected. `issues` holds every problem found (errors and warnings);
 * the previous snapshot, if any, keeps serving.
 */
export class MeshConfigError extends MeshError {
  readonly code = 'ERR_MESH_CONFIG';
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], summary = 'configuration rejected') {
    const errors = issues.filter((i) => i.severity === 'error');
    const shown = errors.slice(0, 20).map((i) => `  ${formatIssue(i)}`);
    const more = errors.length > shown.length ? `\n  ... and ${errors.length - shown.length} more` : '';
    super(`${summary}: ${errors.length} error(s)\n${shown.join('\n')}${more}`);
    this.issues = issues;
  }
}
