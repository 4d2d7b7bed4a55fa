import type { ResourceRef } from '../issue.js';
import type { Snapshot } from '../config/snapshot.js';
import type { CompiledHttpRoute } from '../routing/route-table.js';
import type { InspectedResource, InspectedRoute, InspectedRouteTable } from './inspection.js';

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
    tables.push({ host, virtualService: inspectedResource(table.resource), routes: table.routes.map(inspectRoute) });
  }
  return tables;
}
