import type { InspectedCluster, InspectedRouteTable, MeshInspection } from './inspection.js';

/** Left-aligned columns separated by two spaces, as `istioctl proxy-config` prints them. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

const ref = (r: { namespace: string; name: string } | undefined): string => (r ? `${r.name}.${r.namespace}` : '-');

export function clustersText(clusters: readonly InspectedCluster[]): string {
  return formatTable(
    ['SERVICE FQDN', 'PORT', 'SUBSET', 'DISCOVERY', 'LB', 'HEALTHY', 'IN-FLIGHT', 'DESTINATION RULE'],
    clusters.map((c) => [
      c.host,
      String(c.port),
      c.subset ?? '-',
      c.discovery.toUpperCase(),
      c.policy.loadBalancer,
      `${c.endpoints.filter((e) => e.health === 'healthy').length}/${c.endpoints.length}`,
      String(c.inFlight),
      c.destinationRules.map(ref).join(',') || '-',
    ]),
  );
}

export function routesText(tables: readonly InspectedRouteTable[]): string {
  const rows: string[][] = [];
  for (const t of tables) {
    for (const r of t.routes) {
      const dest = r.destinations.map((d) => `${d.host}${d.subset ? `|${d.subset}` : ''}${d.port ? `:${d.port}` : ''} ${d.percent}%`).join(', ');
      rows.push([
        t.host,
        ref(r.resource),
        r.name ?? `#${r.path.replace(/^.*http\[(\d+)\]$/, '$1')}`,
        r.matches.join(' OR ') || 'any',
        dest || r.actions.join(',') || '-',
      ]);
    }
    // tls[] entries (for the host's TLS and HTTPS ports), named `tls#i`.
    for (const r of t.tlsRoutes ?? []) {
      const dest = r.destinations.map((d) => `${d.host}${d.subset ? `|${d.subset}` : ''}${d.port ? `:${d.port}` : ''} ${d.percent}%`).join(', ');
      rows.push([t.host, ref(t.virtualService), `tls#${r.path.replace(/^.*tls\[(\d+)\]$/, '$1')}`, r.matches.join(' OR ') || 'any', dest || '-']);
    }
  }
  return formatTable(['HOST', 'VIRTUAL SERVICE', 'ROUTE', 'MATCH', 'DESTINATIONS'], rows);
}

export function endpointsText(clusters: readonly InspectedCluster[]): string {
  const rows: string[][] = [];
  for (const c of clusters) {
    for (const e of c.endpoints) {
      const health = e.health === 'ejected' && e.ejectedUntil ? `EJECTED until ${e.ejectedUntil}` : e.health.toUpperCase();
      rows.push([e.address, health, c.name, String(e.weight), e.locality || '-', String(e.inFlight)]);
    }
  }
  return formatTable(['ENDPOINT', 'STATUS', 'CLUSTER', 'WEIGHT', 'LOCALITY', 'IN-FLIGHT'], rows);
}

export function configText(view: MeshInspection): string {
  const c = view.config;
  const lines = [
    `snapshot ${c.snapshotVersion}${c.acceptedAt ? ` accepted ${c.acceptedAt}` : ''}, namespace ${c.namespace}`,
    `resources: ${
      Object.entries(c.resources)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || 'none'
    }`,
  ];
  for (const s of c.sources) {
    lines.push(
      `source ${s.id}: ${s.documents} document(s)${s.lastDelivered ? `, delivered ${s.lastDelivered}` : ''}${s.errors.length ? `, ${s.errors.length} error(s)` : ''}`,
    );
    for (const e of s.errors) lines.push(`  ${e.resource ? `${e.resource.kind} ${ref(e.resource)} ` : ''}${e.path ?? ''}: ${e.message}`);
  }
  if (c.lastRejection) lines.push(`last change rejected ${c.lastRejection.at}: ${c.lastRejection.message}`);
  for (const w of c.warnings) lines.push(`warning: ${w.path ?? ''} ${w.message}`);
  for (const d of view.dns)
    lines.push(`dns ${d.name}: ${d.status}${d.addresses.length ? ` ${d.addresses.join(',')}` : ''}${d.lastError ? ` (${d.lastError})` : ''}`);
  for (const b of view.breakers) lines.push(`breaker ${b.host}: ${b.state}`);
  for (const r of view.rateLimits) lines.push(`rate limit ${r.name}: ${r.scope} ${r.maxTokens}/${r.fillIntervalMs}ms by ${r.key} (${r.backend})`);
  return lines.join('\n') + '\n';
}
