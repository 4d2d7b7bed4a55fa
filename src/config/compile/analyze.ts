import type { RouteTable } from '../../routing/route-table.js';
import type { EffectiveDestinationRule, ServiceDef } from '../snapshot.js';
import type { ConfigIssue, ResourceRef } from '../../issue.js';
import { RecentCache } from '../recent-cache.js';
import type { MeshResource } from '../resource.js';
import type { Steps } from '../slices.js';
import { every } from '../slices.js';
import type { CompileContext } from './context.js';
import { IssueSink, locate } from './context.js';
import type { DestinationRuleIndex } from './destination-rules.js';
import type { HostTable } from './hosts.js';

/**
 * Cross-resource checks in the spirit of `istioctl analyze`: routes to subsets that no applicable
 * DestinationRule defines (IST0101), and to hosts no registry knows. Warnings, not errors: Istio
 * accepts such configuration and fails the requests (503 NR / cluster not found).
 *
 * A route table's findings depend on the table and on what its destinations look up: the service
 * and the DestinationRule in force for each host. They are kept per table and reused while those
 * are the same objects, so a change to one resource analyses again only the routes it concerns.
 */
export class RouteAnalysis {
  private readonly findings = new RecentCache<RouteTable, { looked: readonly unknown[]; issues: readonly ConfigIssue[] }>();

  *analyze(
    routes: HostTable<RouteTable>,
    services: HostTable<ServiceDef>,
    rules: DestinationRuleIndex,
    resources: readonly MeshResource[],
    ctx: CompileContext,
    sink: IssueSink,
  ): Steps<void> {
    let byRef: Map<string, MeshResource> | undefined;
    const resourceOf = (ref: ResourceRef) => {
      byRef ??= new Map(resources.map((r) => [`${r.kind}/${r.metadata.namespace}/${r.metadata.name}`, r]));
      return byRef.get(`${ref.kind}/${ref.namespace}/${ref.name}`);
    };
    const k8sSuffix = `.svc.${ctx.clusterDomain}`;
    const seen = new Set<RouteTable>();
    const pace = every(64);
    for (const [, table] of routes.entries()) {
      if (seen.has(table)) continue;
      seen.add(table);
      if (pace()) yield;
      // What each destination finds: its service, and the rule in force when it names a subset.
      const looked: unknown[] = [];
      for (const route of table.routes) {
        for (const d of route.destinations) {
          const service = services.lookup(d.host);
          looked.push(service, d.subset === undefined ? undefined : rules.lookup(d.host, service?.namespace ?? kubernetesNamespace(d.host, k8sSuffix)));
        }
      }
      const kept = this.findings.get(table);
      if (kept && kept.looked.length === looked.length && kept.looked.every((x, i) => x === looked[i])) {
        sink.issues.push(...kept.issues);
        continue;
      }
      yield;
      const own = new IssueSink();
      analyzeTable(table, looked, resourceOf, ctx, own);
      this.findings.set(table, { looked, issues: own.issues });
      sink.issues.push(...own.issues);
    }
    this.findings.passed();
  }
}

function analyzeTable(
  table: RouteTable,
  looked: readonly unknown[],
  resourceOf: (ref: ResourceRef) => MeshResource | undefined,
  ctx: CompileContext,
  sink: IssueSink,
): void {
  const k8sSuffix = `.svc.${ctx.clusterDomain}`;
  let next = 0;
  for (const route of table.routes) {
    route.destinations.forEach((d, i) => {
      const service = looked[next++] as ServiceDef | undefined;
      const rule = looked[next++] as EffectiveDestinationRule | undefined;
      const path = `${route.path}.route[${i}].destination`;
      // Locating a field may re-read its file: only do it for findings.
      const where = () => {
        const resource = resourceOf(route.resource);
        return resource ? { location: locate(resource, [...pathParts(route.path), 'route', i, 'destination']) } : {};
      };
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

/** `reviews.shop.svc.cluster.local` → `shop`. */
export function kubernetesNamespace(host: string, suffix: string): string | undefined {
  if (!host.endsWith(suffix)) return undefined;
  const parts = host.slice(0, -suffix.length).split('.');
  return parts.length === 2 ? parts[1] : undefined;
}

function pathParts(path: string): (string | number)[] {
  return path
    .split(/[.[\]]/)
    .filter((p) => p !== '')
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}
