import { parseArgs } from 'node:util';
import { formatIssue } from '../issue.js';
import type { RouteExplanation } from '../inspect/explain-route.js';
import { explainRoute } from '../inspect/explain-route.js';
import type { ResolvedDestination } from './explain-dns.js';
import { resolveDestinations } from './explain-dns.js';
import { loadConfig } from './load-config.js';
import type { CommandIO } from './run-cli.js';
import { UsageError, parseFormat, parseLabels } from './usage-error.js';

export const EXPLAIN_USAGE = `Usage: sidecarless explain --config <path> [--config <path>]... [--namespace ns]
                           [--label k=v]... [-H 'name: value']... [--format text|json]
                           [--resolve] [--dns-server host[:port]]... <METHOD> <URL>

Shows what the mesh would do with one request: the VirtualService (or HTTPRoute, GRPCRoute) and
the route entry that match, the destinations and weights, the merged DestinationRule policy,
timeout/retries/fault, and the endpoints it would choose among. With --resolve, names found by
DNS (resolution: DNS entries, Kubernetes service names) are looked up now, as the mesh would (SRV
for named ports of Kubernetes services), and the addresses listed; --dns-server asks that server
instead of the ones in /etc/resolv.conf (and implies --resolve).`;

function parseHeaders(values: readonly string[] | undefined): Map<string, string> {
  const headers = new Map<string, string>();
  for (const h of values ?? []) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`-H expects 'name: value', got "${h}"`);
    const name = h.slice(0, colon).trim().toLowerCase();
    const value = h.slice(colon + 1).trim();
    const prior = headers.get(name);
    headers.set(name, prior === undefined ? value : `${prior},${value}`);
  }
  return headers;
}

export async function explainCommand(args: readonly string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...args],
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c', multiple: true },
      namespace: { type: 'string', short: 'n' },
      label: { type: 'string', short: 'l', multiple: true },
      header: { type: 'string', short: 'H', multiple: true },
      format: { type: 'string', short: 'o' },
      resolve: { type: 'boolean' },
      'dns-server': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.out(EXPLAIN_USAGE);
    return 0;
  }
  if (!values.config || values.config.length === 0) throw new UsageError('explain needs --config <path>');
  if (positionals.length !== 2) throw new UsageError('explain needs <METHOD> <URL>');
  const [method, rawUrl] = positionals as [string, string];
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UsageError(`not a URL: "${rawUrl}" (write it whole, e.g. http://reviews:9080/reviews/1)`);
  }
  const format = parseFormat(values.format);
  const headers = parseHeaders(values.header);
  const { snapshot, issues } = await loadConfig(values.config, {
    namespace: values.namespace ?? 'default',
    labels: parseLabels(values.label),
  });
  if (!snapshot) {
    for (const issue of issues) io.err(formatIssue(issue));
    io.err('configuration is invalid; nothing to explain');
    return 1;
  }
  const explanation = explainRoute(snapshot, method, url, headers);
  const servers = values['dns-server'];
  const resolved = values.resolve || servers !== undefined ? await resolveDestinations(snapshot, explanation, servers) : [];
  if (format === 'json') {
    const destinations = explanation.destinations.map((d, i) => (resolved[i] ? { ...d, resolved: resolved[i] } : d));
    io.out(JSON.stringify({ ...explanation, destinations }, null, 2));
  } else io.out(renderExplanation(explanation, resolved));
  return 0;
}

const ref = (r: { kind: string; namespace: string; name: string }) => `${r.kind} ${r.namespace}/${r.name}`;

function renderExplanation(e: RouteExplanation, resolved: readonly (ResolvedDestination | undefined)[]): string {
  const lines: string[] = [];
  lines.push(`${e.request.method} ${e.request.url}`);
  lines.push(`  service host:    ${e.request.host} (port ${e.request.port})`);
  const sidecar = e.egress.sidecar ? `Sidecar ${e.egress.sidecar.namespace}/${e.egress.sidecar.name}` : 'no Sidecar';
  lines.push(`  egress:          ${sidecar}, ${e.egress.outboundTrafficPolicy}: ${e.egress.decision === 'refused' ? 'refused' : e.egress.note}`);
  for (const outcome of e.outcome) lines.push(`  outcome:         ${outcome}`);
  // Routes from Gateway API HTTPRoutes/GRPCRoutes are named with their kind.
  const owner = e.virtualService;
  const ownerText = !owner ? 'none' : owner.kind === 'VirtualService' ? `${owner.namespace}/${owner.name}` : `${owner.kind} ${owner.namespace}/${owner.name}`;
  lines.push(`  VirtualService:  ${ownerText}`);
  if (e.route) {
    const name = e.route.name ? ` "${e.route.name}"` : '';
    lines.push(`  route:           ${e.route.path}${name} of ${ref(e.route.resource)}`);
    lines.push(`  matched on:      ${e.matchedConditions.length > 0 ? e.matchedConditions.join(' AND ') : 'any request (no match conditions)'}`);
  }
  if (e.redirect) lines.push(`  redirect:        ${JSON.stringify(e.redirect)}`);
  if (e.directResponse) lines.push(`  directResponse:  ${JSON.stringify(e.directResponse)}`);
  if (e.rewrite) lines.push(`  rewrite:         ${JSON.stringify(e.rewrite)}`);
  if (e.headers) lines.push(`  headers:         ${JSON.stringify(e.headers)}`);
  for (const m of e.mirrors) {
    const target = `${m.host}${m.port !== undefined ? `:${m.port}` : ''}${m.subset ? ` subset ${m.subset}` : ''}`;
    lines.push(`  mirror:          ${m.percent.toFixed(1)}% of requests copied to ${target}${m.note ? ` (${m.note})` : ''}`);
  }
  lines.push(`  timeout:         ${e.timeout}`);
  lines.push(`  retries:         ${JSON.stringify(e.retries)}`);
  if (e.fault) lines.push(`  fault:           ${JSON.stringify(e.fault)}`);
  for (const [i, d] of e.destinations.entries()) {
    const subset = d.subset ? ` subset ${d.subset}` : '';
    lines.push(`  -> ${d.percent.toFixed(1)}%  ${d.host}:${d.port}${subset}`);
    lines.push(`       DestinationRule: ${d.destinationRules.length > 0 ? d.destinationRules.map((r) => `${r.namespace}/${r.name}`).join(', ') : 'none'}`);
    lines.push(`       policy:          ${d.trafficPolicy ? JSON.stringify(d.trafficPolicy) : 'defaults'}`);
    if (d.endpoints.length > 0) {
      lines.push(`       endpoints (${d.endpoints.length}):`);
      for (const ep of d.endpoints) {
        const labels = Object.entries(ep.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        lines.push(`         ${ep.key}  weight ${ep.weight}${labels ? `  ${labels}` : ''}`);
      }
    } else lines.push(`       endpoints:       none${d.endpointsNote ? ` (${d.endpointsNote})` : ''}`);
    const r = resolved[i];
    if (r) lines.push(...renderResolved(r));
  }
  for (const note of e.notes) lines.push(`  note: ${note}`);
  return lines.join('\n');
}

function renderResolved(r: ResolvedDestination): string[] {
  const lines = ['       DNS now:'];
  for (const n of r.names) {
    const outcome = n.error ?? (n.answeredBy !== undefined ? `answered by ${n.answeredBy}` : 'no records (NXDOMAIN or NODATA)');
    lines.push(`         ${n.name} (${n.query}): ${outcome}`);
  }
  if (r.endpoints.length === 0) {
    lines.push(`       resolved endpoints: none${r.reason ? ` (${r.reason})` : ''}`);
    return lines;
  }
  lines.push(`       resolved endpoints (${r.endpoints.length}):`);
  for (const ep of r.endpoints) {
    const labels = Object.entries(ep.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    lines.push(`         ${ep.key}  weight ${ep.weight}${labels ? `  ${labels}` : ''}`);
  }
  return lines;
}
