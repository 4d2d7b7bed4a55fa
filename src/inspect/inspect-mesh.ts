import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { ConfigStore } from '../config/config-store.js';
import type { ConfigIssue } from '../issue.js';
import { formatLocation } from '../issue.js';
import type { Snapshot } from '../config/snapshot.js';
import type { DnsEndpointSource } from '../discovery/dns/index.js';
import type { KubernetesEndpointSource } from '../kubernetes/discovery/index.js';
import type { BreakerState } from '../resilience/events.js';
import type { BucketKeySpec } from '../resilience/rate-limit/rate-limit-spec.js';
import type { RateLimiting } from '../resilience/rate-limit/rate-limiting.js';
import { inspectClusters } from './cluster-view.js';
import type { InspectedConfig, InspectedDnsName, InspectedIssue, InspectedRateLimit, MeshInspection } from './inspection.js';
import { inspectedResource, inspectRoutes } from './route-view.js';

/** The mesh's parts inspection reads; it never changes them. */
export interface InspectionInputs {
  readonly snapshot: Snapshot;
  readonly store: ConfigStore;
  readonly clusters: ClusterManager;
  readonly dns: DnsEndpointSource | undefined;
  readonly kube: KubernetesEndpointSource | undefined;
  readonly breakers: ReadonlyMap<string, { readonly state: BreakerState }>;
  readonly rateLimits: RateLimiting;
  /** The mesh clock's now (ms), to turn its times into wall-clock times. */
  readonly clockNow: number;
  /** The mesh clock's wall-clock time (ms since the epoch) at the same instant. */
  readonly wallNow: number;
}

export function inspectedIssue(issue: ConfigIssue): InspectedIssue {
  const location = formatLocation(issue.location);
  return {
    severity: issue.severity,
    code: issue.code,
    message: issue.message,
    ...(issue.resource ? { resource: inspectedResource(issue.resource) } : {}),
    ...(issue.path !== undefined ? { path: issue.path } : {}),
    ...(location ? { location } : {}),
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();

function inspectConfig(snapshot: Snapshot, store: ConfigStore): InspectedConfig {
  const resources: Record<string, number> = {};
  for (const r of snapshot.resources) resources[r.kind] = (resources[r.kind] ?? 0) + 1;
  const rejection = store.lastRejection;
  const acceptedAt = store.snapshotAcceptedAt;
  return {
    snapshotVersion: snapshot.version,
    ...(acceptedAt !== undefined ? { acceptedAt: iso(acceptedAt) } : {}),
    namespace: snapshot.namespace,
    resources,
    warnings: snapshot.warnings.map(inspectedIssue),
    sources: store.sourceStatus().map((s) => ({
      id: s.id,
      ...(s.deliveredAt !== undefined ? { lastDelivered: iso(s.deliveredAt) } : {}),
      documents: s.documents,
      errors: s.issues.filter((i) => i.severity === 'error').map(inspectedIssue),
      warnings: s.issues.filter((i) => i.severity === 'warning').length,
    })),
    ...(rejection
      ? {
          lastRejection: {
            at: iso(rejection.at),
            message: rejection.error.message,
            issues: rejection.error.issues.filter((i) => i.severity === 'error').map(inspectedIssue),
          },
        }
      : {}),
  };
}

function inspectDns(dns: DnsEndpointSource, wallTime: (ms: number) => string): InspectedDnsName[] {
  const names: InspectedDnsName[] = [];
  for (const key of dns.keys().sort()) {
    const s = dns.status(key);
    if (!s) continue;
    names.push({
      name: s.name,
      mode: s.mode,
      status: s.lastError && s.consecutiveFailures > 0 ? 'failing' : s.endpoints === undefined ? 'pending' : 'ok',
      ...(s.fqdn !== undefined ? { fqdn: s.fqdn } : {}),
      addresses: (s.endpoints ?? []).map((e) => e.key),
      ...(s.lastError ? { lastError: s.lastError.message } : {}),
      consecutiveFailures: s.consecutiveFailures,
      ...(s.answeredAt !== undefined ? { answeredAt: wallTime(s.answeredAt) } : {}),
      ...(s.nextLookupAt !== undefined ? { nextLookupAt: wallTime(s.nextLookupAt) } : {}),
    });
  }
  return names;
}

function keyText(key: BucketKeySpec): string {
  return key.kind === 'header' || key.kind === 'query' ? `${key.kind}:${key.name}` : key.kind;
}

function inspectRateLimits(snapshot: Snapshot, rateLimits: RateLimiting): InspectedRateLimit[] {
  return snapshot.rateLimits.limits.map((l) => ({
    name: l.name,
    source: inspectedResource(l.source),
    path: l.path,
    scope: l.scope,
    maxTokens: l.bucket.maxTokens,
    tokensPerFill: l.bucket.tokensPerFill,
    fillIntervalMs: l.bucket.fillIntervalMs,
    key: keyText(l.key),
    backend: rateLimits.backendOf(l.id) ?? 'unused',
  }));
}

/** A JSON view of the mesh now. Walks the snapshot and live state once; nothing on the data path. */
export function inspectMesh(inputs: InspectionInputs): MeshInspection {
  const wallNow = inputs.wallNow;
  const wallTime = (clockMs: number): string => iso(wallNow + (clockMs - inputs.clockNow));
  const breakerState = (host: string): BreakerState | undefined => inputs.breakers.get(host)?.state;
  return {
    takenAt: iso(wallNow),
    config: inspectConfig(inputs.snapshot, inputs.store),
    routes: inspectRoutes(inputs.snapshot),
    clusters: inspectClusters({ snapshot: inputs.snapshot, clusters: inputs.clusters, dns: inputs.dns, kube: inputs.kube, breakerState, wallTime }),
    dns: inputs.dns ? inspectDns(inputs.dns, wallTime) : [],
    breakers: [...inputs.breakers].map(([host, b]) => ({ host, state: b.state })),
    rateLimits: inspectRateLimits(inputs.snapshot, inputs.rateLimits),
  };
}
