import { parseArgs } from 'node:util';
import { formatIssue } from '../config/issue.js';
import { loadConfig } from './load-config.js';
import type { CommandIO } from './run-cli.js';
import { UsageError, parseFormat, parseLabels } from './usage-error.js';

export const VALIDATE_USAGE = `Usage: sidecarless validate [--namespace ns] [--label k=v]... [--format text|json] <file|dir>...

Validates Istio resources as the mesh would load them. Exit 0 when valid (warnings go to
stderr), 1 when any resource is invalid, 2 on usage errors.`;

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
  const warnings = issues.filter((i) => i.severity === 'warning');
  if (format === 'json') {
    io.out(JSON.stringify({ valid: errors.length === 0, resources: snapshot?.resources.length ?? 0, errors, warnings }, null, 2));
  } else {
    for (const issue of errors) io.err(formatIssue(issue));
    for (const issue of warnings) io.err(formatIssue(issue));
    io.out(
      errors.length === 0
        ? `valid: ${snapshot?.resources.length ?? 0} resource(s), ${warnings.length} warning(s)`
        : `invalid: ${errors.length} error(s), ${warnings.length} warning(s)`,
    );
  }
  return errors.length === 0 ? 0 : 1;
}
