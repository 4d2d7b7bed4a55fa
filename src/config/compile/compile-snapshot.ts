import type { CompiledRateLimits } from './rate-limit/rate-limit-table.js';
import { compileRateLimits, rateLimitTable } from './rate-limit/rate-limit-table.js';
import type { PeerAuthenticationPolicy } from '../../security/peer-authentication-policy.js';
import { compilePeerAuthentication } from './security/peer-authentication.js';
import type { CompiledAuthorization } from '../../security/authz/compiled-authorization.js';
import { compileAuthorization } from './security/authorization-policies.js';
import type { CompiledRequestAuthentication } from '../../security/jwt/compiled-jwt-rules.js';
import { compileRequestAuthentication } from './security/request-authentication.js';
import type { ConfigIssue } from '../../issue.js';
import type { MeshResource } from '../resource.js';
import type { Steps } from '../slices.js';
import { runToEnd } from '../slices.js';
import type { ServiceDef, Snapshot } from '../snapshot.js';
import type { HostTable } from './hosts.js';
import { RouteAnalysis, kubernetesNamespace } from './analyze.js';
import type { CompileContext } from './context.js';
import { IssueSink } from './context.js';
import { DestinationRuleCache, DestinationRuleIndex } from './destination-rules.js';
import { selectSidecar } from './sidecar-scope.js';
import { ServiceEntryCache, buildServiceRegistry } from './service-registry.js';
import { VirtualServiceCompiler } from './virtual-services.js';
import type { PortProtocolOf } from './port-routing.js';
import { PortRouting, checkUnusedTlsRoutes } from './port-routing.js';

/**
 * Turns validated resources into a snapshot for one caller. Keeps per-resource caches between
 * compiles so that one changed resource costs little, and compiles in steps so that a large
 * configuration can be compiled in slices between requests.
 */
export class SnapshotCompiler {
  private readonly virtualServices = new VirtualServiceCompiler();
  private readonly registry = new Reuse<HostTable<ServiceDef>>();
  private readonly serviceEntries = new ServiceEntryCache();
  private readonly rules = new Reuse<DestinationRuleIndex>();
  private readonly ruleCache = new DestinationRuleCache();
  private readonly rateLimits = new Reuse<CompiledRateLimits>();
  private readonly peerAuthentication = new Reuse<PeerAuthenticationPolicy>();
  private readonly authorization = new Reuse<CompiledAuthorization>();
  private readonly requestAuthentication = new Reuse<CompiledRequestAuthentication>();
  private readonly analysis = new RouteAnalysis();

  constructor(private readonly ctx: CompileContext) {}

  /** Compiles at once. */
  compile(resources: readonly MeshResource[], version: number): CompileResult {
    return runToEnd(this.steps(resources, version));
  }

  /** Compiles in steps: each `yield` is a point where the caller may let other work run. */
  *steps(resources: readonly MeshResource[], version: number): Steps<CompileResult> {
    const ctx = this.ctx;
    const sink = new IssueSink();
    const scope = selectSidecar(resources, ctx);
    // A change to one kind leaves the others' compiled parts (and their findings) as they were.
    const services = yield* this.registry.steps(
      resources.filter((r) => r.kind === 'ServiceEntry' || r.kind === 'WorkloadEntry'),
      sink,
      (inputs, s) => buildServiceRegistry(inputs, ctx, s, this.serviceEntries),
    );
    const rules = yield* this.rules.steps(
      resources.filter((r) => r.kind === 'DestinationRule'),
      sink,
      (inputs, s) => DestinationRuleIndex.build(inputs, ctx, s, this.ruleCache),
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
    const routes = yield* this.virtualServices.build(resources, ctx, scope, sink);
    yield* this.analysis.analyze(routes, services, rules, resources, ctx, sink);
    rateLimits.policies.analyze((host) => routes.lookup(host), sink);
    checkUnusedTlsRoutes(routes, services, resources, ctx, sink);
    yield;
    const k8sSuffix = `.svc.${ctx.clusterDomain}`;
    const visible = [...services.entries()].map(([, s]) => s).filter((s) => scope.isImported(s.host, s.namespace));
    const visibleService = (host: string) => {
      const s = services.lookup(host);
      return s && scope.isImported(host, s.namespace) ? s : undefined;
    };
    const portRouting = new PortRouting(routes, visibleService, ctx);

    const snapshot: Snapshot = Object.freeze({
      version,
      namespace: ctx.namespace,
      rootNamespace: ctx.rootNamespace,
      clusterDomain: ctx.clusterDomain,
      resources,
      namespaces: new Set([ctx.namespace, ctx.rootNamespace, ...resources.map((r) => r.metadata.namespace)]),
      warnings: sink.issues.filter((i) => i.severity === 'warning'),
      routeTable: (host: string) => routes.lookup(host),
      routeFor: (host: string, port: number, protocolOf?: PortProtocolOf) => portRouting.routeFor(host, port, protocolOf),
      routeTables: () => routes.entries(),
      service: visibleService,
      services: () => visible,
      destinationRule: (host: string) => rules.lookup(host, services.lookup(host)?.namespace ?? kubernetesNamespace(host, k8sSuffix)),
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

export interface CompileResult {
  readonly snapshot: Snapshot;
  readonly issues: ConfigIssue[];
}

/** Keeps the last result of a build step and reuses it while its inputs are the same objects. */
class Reuse<T> {
  private inputs: readonly MeshResource[] = [];
  private result: T | undefined;
  private issues: readonly ConfigIssue[] = [];

  get(inputs: readonly MeshResource[], sink: IssueSink, build: (inputs: readonly MeshResource[], sink: IssueSink) => T): T {
    const kept = this.reuse(inputs, sink);
    if (kept !== undefined) return kept;
    const own = new IssueSink();
    return this.keep(inputs, build(inputs, own), own, sink);
  }

  /** As `get`, for a build that runs in steps. */
  *steps(inputs: readonly MeshResource[], sink: IssueSink, build: (inputs: readonly MeshResource[], sink: IssueSink) => Steps<T>): Steps<T> {
    const kept = this.reuse(inputs, sink);
    if (kept !== undefined) return kept;
    const own = new IssueSink();
    // Kept only once finished: an abandoned compile leaves the last result in place.
    return this.keep(inputs, yield* build(inputs, own), own, sink);
  }

  private reuse(inputs: readonly MeshResource[], sink: IssueSink): T | undefined {
    if (this.result === undefined || inputs.length !== this.inputs.length || !inputs.every((r, i) => r === this.inputs[i])) return undefined;
    for (const issue of this.issues) sink.issues.push(issue);
    return this.result;
  }

  private keep(inputs: readonly MeshResource[], result: T, own: IssueSink, sink: IssueSink): T {
    this.result = result;
    this.inputs = inputs;
    this.issues = own.issues;
    // One at a time: a spread of many thousands of findings would overflow the call stack.
    for (const issue of own.issues) sink.issues.push(issue);
    return result;
  }
}
