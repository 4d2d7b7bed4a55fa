import { parseArgs } from 'node:util';
import type { ConfigIssue } from '../issue.js';
import { formatIssue, formatLocation, formatResourceRef } from '../issue.js';
import { loadConfig } from './load-config.js';
import type { CommandIO } from './run-cli.js';
import { UsageError, parseFormat, parseLabels } from './usage-error.js';

export const VALIDATE_USAGE = `Usage: sidecarless validate [--namespace ns] [--label k=v]... [--format text|json] <file|dir>...

Validates Istio resources as the mesh would load them. Exit 0 when valid (warnings go to
stderr), 1 when any resource is invalid, 2 on usage errors. Resources of kinds sidecarless does
not read (Gateway, RequestAuthentication, a Deployment, ...) are listed as not read: they are not
validated and have no effect.`;

/** A document skipped because of its kind: the warning says so at `kind` (or at `apiVersion` for another API's kind). */
function isNotRead(issue: ConfigIssue): boolean {
  return (
    issue.severity === 'warning' &&
    ((issue.path === 'kind' && ['not-implemented', 'not-applicable', 'ignored'].includes(issue.code)) ||
      (issue.path === 'apiVersion' && issue.code === 'ignored'))
  );
}

export async function validateCommand(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      label: { type: 'string', short: 'l', multiple: true },
      format: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(VALIDATE_USAGE);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError('validate needs at least one file or directory');
  const format = parseFormat(values.format);
  const { snapshot, issues } = await loadConfig(positionals, {
    namespace: values.namespace ?? 'default',
    labels: parseLabels(values.label),
  });
  const errors = issues.filter((i) => i.severity === 'error');
  const notRead = issues.filter(isNotRead);
  const warnings = issues.filter((i) => i.severity === 'warning' && !isNotRead(i));
  const read = snapshot?.resources.length ?? 0;
  if (format === 'json') {
    const skipped = notRead.map((i) => ({ ...i.resource, location: i.location, reason: i.message }));
    // Not "valid" when nothing it holds is read.
    const valid = errors.length === 0 && (read > 0 || notRead.length === 0);
    io.out(JSON.stringify({ valid, resources: read, notRead: skipped, errors, warnings }, null, 2));
  } else {
    for (const issue of errors) io.err(formatIssue(issue));
    for (const issue of warnings) io.err(formatIssue(issue));
    io.out(summary(errors.length, warnings.length, read, notRead.length));
    for (const issue of notRead) {
      const where = formatLocation(issue.location);
      io.out(`  ${formatResourceRef(issue.resource)}${where ? ` (${where})` : ''}: ${issue.message}`);
    }
  }
  return errors.length === 0 ? 0 : 1;
}

function summary(errors: number, warnings: number, read: number, notRead: number): string {
  const skipped = notRead > 0 ? `; not read: ${notRead} resource(s) of kinds sidecarless does not read, neither validated nor applied:` : '';
  if (errors > 0) return `invalid: ${errors} error(s), ${warnings} warning(s)${skipped}`;
  if (read === 0 && notRead > 0) return `nothing validated: no resource of a kind sidecarless reads, ${warnings} warning(s)${skipped}`;
  return `valid: ${read} resource(s), ${warnings} warning(s)${skipped}`;
}
