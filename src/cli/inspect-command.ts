import { parseArgs } from 'node:util';
import type { CommandIO } from './run-cli.js';
import { UsageError, parseFormat } from './usage-error.js';

export const INSPECT_USAGE = `Usage: sidecarless inspect [--url http://127.0.0.1:15000] [--format text|json]
                           [clusters|routes|endpoints|config|dump]

Reads a running mesh's admin server (mesh.serveAdmin()) and prints what it holds now, as
'istioctl proxy-config' does for a sidecar: clusters with their policy and endpoint health,
routes per host in order, endpoints with health and in-flight requests, config sources with their
last errors (config), or the whole mesh.inspect() JSON (dump). Default: clusters.`;

const VIEWS: Readonly<Record<string, string>> = {
  clusters: '/clusters',
  routes: '/routes',
  endpoints: '/endpoints',
  config: '/config',
  dump: '/config_dump',
};

const DEFAULT_URL = 'http://127.0.0.1:15000';

function causeText(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
}

export async function inspectCommand(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      url: { type: 'string', short: 'u' },
      format: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(INSPECT_USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError('inspect takes one view: clusters, routes, endpoints, config or dump');
  const view = positionals[0] ?? 'clusters';
  const path = VIEWS[view];
  if (path === undefined) throw new UsageError(`unknown view "${view}"; expected clusters, routes, endpoints, config or dump`);
  const format = parseFormat(values.format);
  let base: URL;
  try {
    base = new URL(values.url ?? DEFAULT_URL);
  } catch {
    throw new UsageError(`--url must be a URL such as ${DEFAULT_URL}, got "${values.url ?? ''}"`);
  }
  const target = new URL(path, base);
  if (format === 'json' && view !== 'dump') target.searchParams.set('format', 'json');
  let response: Response;
  try {
    response = await fetch(target, { signal: AbortSignal.timeout(10_000) });
  } catch (error) {
    io.err(
      `sidecarless: nothing answers at ${base.origin} (${causeText(error)}). Is the application running with ` +
        `mesh.serveAdmin() on that address? Pass --url to read another one.`,
    );
    return 1;
  }
  const body = await response.text();
  if (!response.ok) {
    io.err(`sidecarless: ${target.href} answered ${response.status}: ${body.trim()}`);
    return 1;
  }
  io.out(body.replace(/\n$/, ''));
  return 0;
}
