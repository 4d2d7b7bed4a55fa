import { fetch as undiciFetch } from 'undici';
import type { MeshClock } from '../../clock.js';
import type { Snapshot } from '../../config/snapshot.js';
import type { RateLimiting } from '../../resilience/rate-limit/rate-limiting.js';
import type { CustomAuthorizer } from '../../security/authz/custom-authorizer.js';
import { functionAuthorizer } from '../../security/authz/custom-authorizer.js';
import type { AccessDeniedError, JwtAuthenticationError } from '../../security/authz/errors.js';
import type { CheckSender } from '../../security/authz/ext-authz-http.js';
import { extAuthzHttp } from '../../security/authz/ext-authz-http.js';
import { JwksCache } from '../../security/jwt/jwks-cache.js';
import { loadJose } from '../../security/jwt/jose-loader.js';
import type { MeshTelemetry } from '../../telemetry/mesh-telemetry.js';
import type { InboundLayer } from '../../security/inbound/inbound-layer.js';
import { buildInboundLayers } from './inbound-layers.js';
import { InboundProcessor } from './inbound-processor.js';
import type { InboundAuditEvent, InboundReporter } from '../../security/inbound/inbound-reporter.js';
import type { InboundMeshConfig } from './inbound-setup.js';
import { normalizeRequestPath } from './path-normalization.js';
import type { DestinationLabels } from './server-telemetry.js';

/** What the inbound side needs from the mesh it serves. */
export interface MeshInboundDeps {
  readonly config: InboundMeshConfig;
  readonly snapshot: () => Snapshot | undefined;
  readonly telemetry: MeshTelemetry | undefined;
  readonly rateLimits: RateLimiting;
  readonly clock: MeshClock;
  /** The workload's SPIFFE ID while it has certificates (`destination_principal`). */
  readonly principal: () => string | undefined;
  /** Sends an ext authz check through the mesh (the authorizer is a service like any other). */
  readonly sendCheck: CheckSender;
  readonly denied: (error: AccessDeniedError | JwtAuthenticationError) => void;
  readonly audit: (event: InboundAuditEvent) => void;
}

/**
 * The inbound side of a mesh: the processor the server integrations run each request through, and
 * the per-snapshot layers, JWKS caches and CUSTOM authorizers behind it. Loaded by `createMesh`
 * apart from the package's entry, so that importing the package does not load it.
 */
export class MeshInbound {
  private processorValue: InboundProcessor | undefined;
  private readonly layers = new WeakMap<Snapshot, readonly InboundLayer[]>();
  private readonly jwksCaches = new Map<string, JwksCache>();
  private readonly authorizers = new Map<string, CustomAuthorizer | undefined>();
  private readonly reporter: InboundReporter;

  constructor(private readonly deps: MeshInboundDeps) {
    this.reporter = {
      denied: (error) => deps.denied(error),
      audit: (event) => {
        if (event.kind === 'dry-run') deps.telemetry?.authzDryRun(event.policy, event.result);
        deps.audit(event);
      },
    };
  }

  get processor(): InboundProcessor {
    const deps = this.deps;
    this.processorValue ??= new InboundProcessor({
      snapshot: deps.snapshot,
      layers: (snapshot) => this.layersFor(snapshot),
      telemetry: deps.telemetry,
      destination: () => this.destinationLabels(),
      normalization: deps.config.normalization,
      trustedProxies: deps.config.trustedProxies,
      timeoutMs: deps.config.timeoutMs,
      answered: (reply) => deps.telemetry?.inboundDenied(reply.reason, reply.decidedBy ?? ''),
    });
    return this.processorValue;
  }

  /** `url` with its path normalised as the inbound path normalises it; unchanged when it cannot be. */
  normalize(url: string): string {
    const n = normalizeRequestPath(url, this.deps.config.normalization);
    if (!n.ok) return url;
    return n.query ? `${n.path}?${n.query}` : n.path;
  }

  /** A candidate snapshot: its layers are built before it serves, once the inbound side is in use. */
  stage(snapshot: Snapshot): void {
    if (this.processorValue) this.layersFor(snapshot);
  }

  private layersFor(snapshot: Snapshot): readonly InboundLayer[] {
    let layers = this.layers.get(snapshot);
    if (!layers) {
      layers = buildInboundLayers(snapshot, {
        rateLimits: this.deps.rateLimits,
        reporter: this.reporter,
        providers: (name) => this.authorizer(name),
        jwt: {
          jose: loadJose,
          reporter: this.reporter,
          wallClock: () => Date.now(),
          jwks: (jose, uri) => {
            let cache = this.jwksCaches.get(uri);
            if (!cache) {
              cache = new JwksCache(uri, jose, fetchJwks, () => this.deps.clock.now());
              this.jwksCaches.set(uri, cache);
            }
            return cache;
          },
        },
      });
      this.layers.set(snapshot, layers);
    }
    return layers;
  }

  /** The CUSTOM provider of that name: the application's function, else an ext authz HTTP service; undefined denies. */
  private authorizer(name: string): CustomAuthorizer | undefined {
    if (this.authorizers.has(name)) return this.authorizers.get(name);
    const fn = this.deps.config.authorizers.get(name);
    const http = this.deps.config.extensionProviders.get(name)?.envoyExtAuthzHttp;
    const authorizer = fn ? functionAuthorizer(fn) : http ? extAuthzHttp(http, this.deps.sendCheck) : undefined;
    this.authorizers.set(name, authorizer);
    return authorizer;
  }

  /** This workload as Istio's `destination_*` labels name it (inbound metrics). */
  private destinationLabels(): DestinationLabels {
    const source = this.deps.telemetry?.source;
    return {
      destination_workload: source?.source_workload ?? 'unknown',
      destination_workload_namespace: source?.source_workload_namespace ?? 'unknown',
      destination_principal: this.deps.principal() ?? source?.source_principal ?? 'unknown',
      destination_app: source?.source_app ?? 'unknown',
      destination_version: source?.source_version ?? 'unknown',
      destination_service_namespace: this.deps.snapshot()?.namespace ?? 'unknown',
    };
  }
}

/** A JWKS document, fetched directly (the identity provider is usually outside the mesh). */
async function fetchJwks(uri: string, timeoutMs: number): Promise<unknown> {
  const res = await undiciFetch(uri, { signal: AbortSignal.timeout(timeoutMs), headers: { accept: 'application/json' } });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`${uri} answered ${res.status}`);
  }
  return res.json();
}
