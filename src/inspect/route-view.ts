import type { ResourceRef } from '../issue.js';
import type { Snapshot } from '../config/snapshot.js';
import type { CompiledHttpRoute, RouteTable } from '../routing/route-table.js';
import { compileDestinations } from '../routing/route-table.js';
import { qualifyHost } from '../config/compile/hosts.js';
import { describeTlsMatch } from '../routing/tls-route.js';
import type { InspectedResource, InspectedRoute, InspectedRouteTable, InspectedTlsRoute } from './inspection.js';

export function inspectedResource(ref: ResourceRef): InspectedResource {
  return { kind: ref.kind, namespace: ref.namespace, name: ref.name };
}

const ACTIONS = ['redirect', 'directResponse', 'fault', 'retries', 'timeout', 'rewrite', 'headers', 'mirror', 'mirrors'] as const;

function inspectRoute(route: CompiledHttpRoute): InspectedRoute {
  const spec = route.spec as Readonly<Record<string, unknown>>;
  return {
    ...(route.name !== undefined ? { name: route.name } : {}),
    resource: inspectedResource(route.resource),
    path: route.path,
    matches: route.matches.map((m) => (m.conditions.length > 0 ? m.conditions.join(' AND ') : 'any')),
    destinations: route.destinations.map((d) => ({
      host: d.host,
      ...(d.subset !== undefined ? { subset: d.subset } : {}),
      ...(d.port !== undefined ? { port: d.port } : {}),
      weight: d.weight,
      percent: Math.round(d.share * 10_000) / 100,
    })),
    actions: ACTIONS.filter((a) => spec[a] !== undefined && spec[a] !== null),
  };
}

/** Every host's route table, exact hosts first, in the order the snapshot holds them. */
export function inspectRoutes(snapshot: Snapshot): InspectedRouteTable[] {
  const tables: InspectedRouteTable[] = [];
  for (const [host, table] of snapshot.routeTables()) {
    const tlsRoutes = inspectTlsRoutes(table, snapshot.clusterDomain);
    tables.push({
      host,
      virtualService: inspectedResource(table.resource),
      routes: table.routes.map(inspectRoute),
      ...(tlsRoutes.length > 0 ? { tlsRoutes } : {}),
    });
  }
  return tables;
}

/** The table's `tls` routes as written (which apply is decided per port, by SNI). */
function inspectTlsRoutes(table: RouteTable, clusterDomain: string): InspectedTlsRoute[] {
  return (table.tls ?? []).map((spec, i) => ({
    path: `spec.tls[${i}]`,
    matches: (spec.match ?? []).map(describeTlsMatch),
    destinations: compileDestinations(spec.route, (h) => qualifyHost(h, table.resource.namespace, clusterDomain)).destinations.map((d) => ({
      host: d.host,
      ...(d.subset !== undefined ? { subset: d.subset } : {}),
      ...(d.port !== undefined ? { port: d.port } : {}),
      weight: d.weight,
      percent: Math.round(d.share * 10_000) / 100,
    })),
  }));
}
