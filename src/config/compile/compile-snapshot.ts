import type { ConfigIssue } from '../issue.js';
import type { MeshResource } from '../resource.js';
import type { Snapshot } from '../snapshot.js';
import { analyzeRoutes, kubernetesNamespace } from './analyze.js';
import type { CompileContext } from './context.js';
import { IssueSink } from './context.js';
import { DestinationRuleIndex } from './destination-rules.js';
import { selectSidecar } from './sidecar-scope.js';
import { buildServiceRegistry } from './service-registry.js';
import { VirtualServiceCompiler } from './virtual-services.js';

/**
 * Turns validated resources into a snapshot for one caller. Keeps per-resource caches between
 * compiles so that one changed resource costs little.
 */
export class SnapshotCompiler {
  private readonly virtualServices = new VirtualServiceCompiler();

  constructor(private readonly ctx: CompileContext) {}

  compile(resources: readonly MeshResource[], version: number): { snapshot: Snapshot; issues: ConfigIssue[] } {
    const ctx = this.ctx;
    const sink = new IssueSink();
    const scope = selectSidecar(resources, ctx);
    const services = buildServiceRegistry(resources, ctx, sink);
    const rules = new DestinationRuleIndex(resources, ctx, sink);
    const routes = this.virtualServices.build(resources, ctx, scope, sink);
    analyzeRoutes(routes, services, rules, resources, ctx, sink);
    const k8sSuffix = `.svc.${ctx.clusterDomain}`;
    const visible = [...services.entries()]
      .map(([, s]) => s)
      .filter((s) => scope.isImported(s.host, s.namespace));

    const snapshot: Snapshot = Object.freeze({
      version,
      namespace: ctx.namespace,
      rootNamespace: ctx.rootNamespace,
      clusterDomain: ctx.clusterDomain,
      resources,
      warnings: sink.issues.filter((i) => i.severity === 'warning'),
      routeTable: (host: string) => routes.lookup(host),
      service: (host: string) => {
        const s = services.lookup(host);
        return s && scope.isImported(host, s.namespace) ? s : undefined;
      },
      services: () => visible,
      destinationRule: (host: string) =>
        rules.lookup(host, services.lookup(host)?.namespace ?? kubernetesNamespace(host, k8sSuffix)),
      isEgressAllowed: (host: string, namespace: string) => scope.isImported(host, namespace),
    });
    return { snapshot, issues: sink.issues };
  }
}
