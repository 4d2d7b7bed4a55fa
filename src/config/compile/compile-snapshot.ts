import type { CompiledRateLimits } from '../../resilience/rate-limit/compile/rate-limit-table.js';
import { compileRateLimits, rateLimitTable } from '../../resilience/rate-limit/compile/rate-limit-table.js';
import type { PeerAuthenticationPolicy } from '../../security/peer-authentication.js';
import { compilePeerAuthentication } from '../../security/peer-authentication.js';
import type { CompiledAuthorization } from '../../security/authz/authorization-policies.js';
import { compileAuthorization } from '../../security/authz/authorization-policies.js';
import type { CompiledRequestAuthentication } from '../../security/jwt/request-authentication.js';
import { compileRequestAuthentication } from '../../security/jwt/request-authentication.js';
import type { ConfigIssue } from '../issue.js';
import type { MeshResource } from '../resource.js';
import type { ServiceDef, Snapshot } from '../snapshot.js';
import type { HostTable } from './hosts.js';
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
  private readonly registry = new Reuse<HostTable<ServiceDef>>();
  private readonly rules = new Reuse<DestinationRuleIndex>();
  private readonly rateLimits = new Reuse<CompiledRateLimits>();
  private readonly peerAuthentication = new Reuse<PeerAuthenticationPolicy>();
  private readonly authorization = new Reuse<CompiledAuthorization>();
  private readonly requestAuthentication = new Reuse<CompiledRequestAuthentication>();

  constructor(private readonly ctx: CompileContext) {}

  compile(resources: readonly MeshResource[], version: number): { snapshot: Snapshot; issues: ConfigIssue[] } {
    const ctx = this.ctx;
    const sink = new IssueSink();
    const scope = selectSidecar(resources, ctx);
    // A change to one kind leaves the others' compiled parts (and their findings) as they were.
    const services = this.registry.get(
      resources.filter((r) => r.kind === 'ServiceEntry' || r.kind === 'WorkloadEntry'),
      sink,
      (inputs, s) => buildServiceRegistry(inputs, ctx, s),
    );
    const rules = this.rules.get(
      resources.filter((r) => r.kind === 'DestinationRule'),
      sink,
      (inputs, s) => new DestinationRuleIndex(inputs, ctx, s),
    );
    const rateLimits = this.rateLimits.get(
      resources.filter((r) => r.kind === 'RateLimitPolicy' || r.kind === 'EnvoyFilter'),
      sink,
      (inputs, s) => compileRateLimits(inputs, ctx, s),
    );
    const peerAuthentication = this.peerAuthentication.get(
      resources.filter((r) => r.kind === 'PeerAuthentication'),
      sink,
      (inputs) => compilePeerAuthentication(inputs, ctx),
    );
    const authorization = this.authorization.get(
      resources.filter((r) => r.kind === 'AuthorizationPolicy'),
      sink,
      (inputs, s) => compileAuthorization(inputs, ctx, s),
    );
    const requestAuthentication = this.requestAuthentication.get(
      resources.filter((r) => r.kind === 'RequestAuthentication'),
      sink,
      (inputs) => compileRequestAuthentication(inputs, ctx),
    );
    const routes = this.virtualServices.build(resources, ctx, scope, sink);
    analyzeRoutes(routes, services, rules, resources, ctx, sink);
    rateLimits.policies.analyze((host) => routes.lookup(host), sink);
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
      namespaces: new Set([ctx.namespace, ctx.rootNamespace, ...resources.map((r) => r.metadata.namespace)]),
      warnings: sink.issues.filter((i) => i.severity === 'warning'),
      routeTable: (host: string) => routes.lookup(host),
      routeTables: () => routes.entries(),
      service: (host: string) => {
        const s = services.lookup(host);
        return s && scope.isImported(host, s.namespace) ? s : undefined;
      },
      services: () => visible,
      destinationRule: (host: string) =>
        rules.lookup(host, services.lookup(host)?.namespace ?? kubernetesNamespace(host, k8sSuffix)),
      upstreamTls: (block: unknown) => rules.tls.get(block),
      sidecar: scope.source,
      outboundTrafficPolicy: scope.outboundTrafficPolicy,
      isEgressAllowed: (host: string, namespace: string) => scope.isImported(host, namespace),
      rateLimits: rateLimitTable(rateLimits, (host) => services.lookup(host)?.namespace ?? kubernetesNamespace(host, k8sSuffix)),
      peerAuthentication,
      authorization,
      requestAuthentication,
    });
    return { snapshot, issues: sink.issues };
  }
}

/** Keeps the last result of a build step and reuses it while its inputs are the same objects. */
class Reuse<T> {
  private inputs: readonly MeshResource[] = [];
  private result: T | undefined;
  private issues: readonly ConfigIssue[] = [];

  get(inputs: readonly MeshResource[], sink: IssueSink, build: (inputs: readonly MeshResource[], sink: IssueSink) => T): T {
    if (this.result !== undefined && inputs.length === this.inputs.length && inputs.every((r, i) => r === this.inputs[i])) {
      sink.issues.push(...this.issues);
      return this.result;
    }
    const own = new IssueSink();
    this.result = build(inputs, own);
    this.inputs = inputs;
    this.issues = own.issues;
    sink.issues.push(...own.issues);
    return this.result;
  }
}
