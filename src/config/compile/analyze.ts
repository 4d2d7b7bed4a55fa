import type { RouteTable } from '../../routing/route-table.js';
import type { ServiceDef } from '../snapshot.js';
import type { CompileContext, IssueSink } from './context.js';
import type { DestinationRuleIndex } from './destination-rules.js';
import type { HostTable } from './hosts.js';
import type { MeshResource } from '../resource.js';
import type { ResourceRef } from '../issue.js';
import { locate } from './context.js';

/**
 * Cross-resource checks in the spirit of `istioctl analyze`: routes to subsets that no applicable
 * DestinationRule defines (IST0101), and to hosts no registry knows. Warnings, not errors: Istio
 * accepts such configuration and fails the requests (503 NR / cluster not found).
 */
export function analyzeRoutes(
  routes: HostTable<RouteTable>,
  services: HostTable<ServiceDef>,
  rules: DestinationRuleIndex,
  resources: readonly MeshResource[],
  ctx: CompileContext,
  sink: IssueSink,
): void {
  let byRef: Map<string, MeshResource> | undefined;
  const resourceOf = (ref: ResourceRef) => {
    byRef ??= new Map(resources.map((r) => [`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`, r]));
    return byRef.get(`${ref.kind}/${ref.namespace}/${ref.name}`);
  };
  const seen = new Set<RouteTable>();
  const k8sSuffix = `.svc.${ctx.clusterDomain}`;
  for (const [, table] of routes.entries()) {
    if (seen.has(table)) continue;
    seen.add(table);
    for (const route of table.routes) {
      route.destinations.forEach((d, i) => {
        const path = `${route.path}.route[${i}].destination`;
        // Locating a field may re-read its file: only do it for findings.
        const where = () => {
          const resource = resourceOf(route.resource);
          return resource ? { location: locate(resource, [...pathParts(route.path), 'route', i, 'destination']) } : {};
        };
        const service = services.lookup(d.host);
        if (!service && !d.host.endsWith(k8sSuffix)) {
          sink.warn({
            code: 'unknown-host',
            message: `destination host "${d.host}" is neither a ServiceEntry host nor a Kubernetes service name (*${k8sSuffix}); requests routed here will fail`,
            resource: route.resource,
            path: `${path}.host`,
            ...where(),
          });
        }
        if (d.subset === undefined) return;
        const namespace = service?.namespace ?? kubernetesNamespace(d.host, k8sSuffix);
        const rule = rules.lookup(d.host, namespace);
        if (!rule?.subsets.has(d.subset)) {
          sink.warn({
            code: 'missing-subset',
            message: rule
              ? `subset "${d.subset}" is not defined by DestinationRule ${rule.sources.map((s) => `${s.namespace}/${s.name}`).join(', ')} for host "${d.host}" (defined: ${[...rule.subsets.keys()].join(', ') || 'none'}) (IST0101)`
              : `subset "${d.subset}" of host "${d.host}" is not defined: no DestinationRule for this host applies to namespace ${ctx.namespace} (IST0101)`,
            resource: route.resource,
            path: `${path}.subset`,
            ...where(),
          });
        }
      });
    }
  }
}

/** `reviews.shop.svc.cluster.local` → `shop`. */
export function kubernetesNamespace(host: string, suffix: string): string | undefined {
  if (!host.endsWith(suffix)) return undefined;
  const parts = host.slice(0, -suffix.length).split('.');
  return parts.length === 2 ? parts[1] : undefined;
}

function pathParts(path: string): (string | number)[] {
  return path.split(/[.[\]]/).filter((p) => p !== '').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}
