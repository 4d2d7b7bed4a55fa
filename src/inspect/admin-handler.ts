import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MeshInspection } from './inspection.js';
import { clustersText, configText, endpointsText, formatTable, routesText } from './text-tables.js';

/** What the admin handler reads from the mesh on each admin request. */
export interface AdminSource {
  inspect(): MeshInspection;
  /** False once the mesh is closed. */
  ready(): boolean;
}

/** The admin paths and what they show (served at `/` and with every 404). */
export const ADMIN_PATHS: Readonly<Record<string, string>> = Object.freeze({
  '/config_dump': 'everything mesh.inspect() returns (JSON)',
  '/clusters': 'clusters with their policy and endpoint counts (?format=json)',
  '/routes': 'VirtualService (and HTTPRoute, GRPCRoute) routes per host, in order (?format=json)',
  '/endpoints': 'endpoints per cluster with health and in-flight requests (?format=json)',
  '/config': 'snapshot, config sources and their last errors, DNS names, breakers, rate limits (?format=json)',
  '/stats': 'counters as name: value lines (?format=json)',
  '/ready': '200 LIVE while the mesh runs',
});

/** A flat list of gauges, Envoy `/stats` style: `cluster.<name>.<gauge>: <value>`. */
export function statsOf(view: MeshInspection): { readonly name: string; readonly value: number }[] {
  const stats: { name: string; value: number }[] = [
    { name: 'config.snapshot_version', value: view.config.snapshotVersion },
    { name: 'config.last_change_rejected', value: view.config.lastRejection ? 1 : 0 },
  ];
  for (const c of view.clusters) {
    const count = (health: string): number => c.endpoints.filter((e) => e.health === health).length;
    stats.push(
      { name: `cluster.${c.name}.membership_total`, value: c.endpoints.length },
      { name: `cluster.${c.name}.membership_healthy`, value: count('healthy') },
      { name: `cluster.${c.name}.outlier_ejected`, value: count('ejected') },
      { name: `cluster.${c.name}.rq_active`, value: c.inFlight },
    );
  }
  for (const d of view.dns) stats.push({ name: `dns.${d.name}.consecutive_failures`, value: d.consecutiveFailures });
  return stats;
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const json = (value: unknown): string => JSON.stringify(value, null, 2) + '\n';

function pathList(): string {
  return formatTable(
    ['PATH', 'SHOWS'],
    Object.entries(ADMIN_PATHS).map(([p, what]) => [p, what]),
  );
}

/**
 * An admin request handler for node:http in the spirit of Envoy's admin interface: read-only
 * views of the mesh, plain-text tables for people and `?format=json` for tools.
 */
export function createAdminHandler(source: AdminSource): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain', `method ${req.method ?? ''} not allowed: the admin interface is read-only\n`);
      return;
    }
    const url = new URL(req.url ?? '/', 'http://admin');
    const asJson = url.searchParams.get('format') === 'json';
    try {
      switch (url.pathname) {
        case '/':
          send(res, 200, 'text/plain', pathList());
          return;
        case '/ready':
          if (source.ready()) send(res, 200, 'text/plain', 'LIVE\n');
          else send(res, 503, 'text/plain', 'closed\n');
          return;
        case '/config_dump':
          send(res, 200, 'application/json', json(source.inspect()));
          return;
      }
      const handler = VIEWS[url.pathname];
      if (!handler) {
        send(res, 404, 'text/plain', `no admin path ${url.pathname}; these exist:\n${pathList()}`);
        return;
      }
      const view = source.inspect();
      if (asJson) send(res, 200, 'application/json', json(handler.json(view)));
      else send(res, 200, 'text/plain', handler.text(view));
    } catch (error) {
      send(res, 503, 'text/plain', `${error instanceof Error ? error.message : String(error)}\n`);
    }
  };
}

const VIEWS: Readonly<Record<string, { json(v: MeshInspection): unknown; text(v: MeshInspection): string }>> = {
  '/clusters': { json: (v) => v.clusters, text: (v) => clustersText(v.clusters) },
  '/routes': { json: (v) => v.routes, text: (v) => routesText(v.routes) },
  '/endpoints': {
    json: (v) => v.clusters.map((c) => ({ cluster: c.name, endpoints: c.endpoints })),
    text: (v) => endpointsText(v.clusters),
  },
  '/config': { json: (v) => ({ ...v.config, dns: v.dns, breakers: v.breakers, rateLimits: v.rateLimits }), text: configText },
  '/stats': {
    json: (v) => ({ stats: statsOf(v) }),
    text: (v) =>
      statsOf(v)
        .map((s) => `${s.name}: ${s.value}`)
        .join('\n') + '\n',
  },
};
