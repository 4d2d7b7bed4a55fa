import type { EventEmitter } from 'node:events';
import type { Snapshot } from '../config/snapshot.js';
import type { MeshConfigError } from '../config/errors.js';
import type { DnsEndpointChange, DnsLookupFailure } from '../discovery/dns/index.js';
import type { KubeCollectionReport } from '../kubernetes/api-watcher.js';
import type { KubernetesDiscoveryNote } from '../kubernetes/discovery/kubernetes-endpoint-source.js';
import type { RateLimitStoreError } from '../resilience/errors.js';
import type { BreakerEvent, EjectionEvent } from '../resilience/events.js';
import type { CertificateBundle } from '../security/certificate-bundle.js';
import type { CertificateError, ClientCredentialRejection, PeerRejectedError } from '../security/errors.js';
import type { AccessDeniedError, JwtAuthenticationError } from '../security/authz/errors.js';
import type { InboundAuditEvent } from '../security/inbound/inbound-reporter.js';
import { inspectedIssue } from './inspect-mesh.js';
import type { MeshLogger } from './logger.js';

/** The mesh events logging listens to (a subset of `MeshEvents`). */
interface LoggedEvents {
  snapshot: [snapshot: Snapshot];
  configRejected: [error: MeshConfigError];
  ejection: [event: EjectionEvent];
  breaker: [event: BreakerEvent];
  dnsError: [failure: DnsLookupFailure];
  dnsChange: [change: DnsEndpointChange];
  rateLimitError: [error: RateLimitStoreError];
  kubernetesStatus: [report: KubeCollectionReport];
  kubernetesNote: [note: KubernetesDiscoveryNote];
  certificateRotated: [bundle: CertificateBundle, previous: CertificateBundle | undefined];
  certificateRejected: [error: CertificateError];
  certificateExpiring: [bundle: CertificateBundle, secondsLeft: number];
  credentialRejected: [rejection: ClientCredentialRejection];
  inboundRejected: [error: PeerRejectedError];
  inboundDenied: [error: AccessDeniedError | JwtAuthenticationError];
  inboundAudit: [event: InboundAuditEvent];
}

function counts(snapshot: Snapshot): Record<string, number> {
  const byKind: Record<string, number> = {};
  for (const r of snapshot.resources) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
  return byKind;
}

/**
 * Logs the mesh's own events: one listener per event kind, nothing on the request path. Each
 * event object carries `event` (one of `MESH_LOG_EVENTS`) and the facts of the event; the message
 * says it in words. The Kubernetes source's status events join here under `kubernetes.*`.
 */
export function logMeshEvents(
  mesh: EventEmitter<LoggedEvents>,
  logger: MeshLogger,
  sourceIds: readonly string[],
  initial: Snapshot | undefined,
  certificates?: { readonly current: CertificateBundle | undefined; readonly lastError: CertificateError | undefined },
): void {
  const accepted = (s: Snapshot): void => {
    logger.info(
      { event: 'config.accepted', version: s.version, sources: sourceIds, resources: counts(s), warnings: s.warnings.length },
      `configuration accepted: snapshot ${s.version} serves (${s.resources.length} resources)`,
    );
  };
  // The first snapshot was accepted before the mesh existed: say so once, at startup.
  if (initial) accepted(initial);
  mesh.on('snapshot', accepted);
  mesh.on('configRejected', (e) => {
    const issues = e.issues.filter((i) => i.severity === 'error').map(inspectedIssue);
    logger.error({ event: 'config.rejected', code: e.code, issues }, e.message);
  });
  mesh.on('ejection', (e) => {
    const facts = { host: e.host, subset: e.subset, port: e.port, endpoint: e.endpoint, ejections: e.ejections };
    if (e.action === 'eject') {
      logger.warn(
        { event: 'endpoint.ejected', ...facts, reason: e.reason, durationMs: e.durationMs },
        `outlier detection ejected ${e.endpoint} from ${e.host}:${e.port} (${e.reason ?? ''}) for ${e.durationMs ?? 0} ms`,
      );
    } else {
      logger.info({ event: 'endpoint.returned', ...facts }, `${e.endpoint} returned to ${e.host}:${e.port}`);
    }
  });
  mesh.on('breaker', (e) => {
    const log = e.state === 'open' ? logger.warn : logger.info;
    log.call(logger, { event: 'breaker.changed', host: e.host, state: e.state }, `breaker of ${e.host} is ${e.state}`);
  });
  mesh.on('dnsError', (f) => {
    logger.warn(
      {
        event: 'dns.failed',
        name: f.name,
        error: f.error.message,
        kept: f.kept.map((e) => e.key),
        consecutiveFailures: f.consecutiveFailures,
        retryInMs: f.retryInMs,
      },
      `DNS lookup of ${f.name} failed: ${f.error.message}`,
    );
  });
  mesh.on('dnsChange', (c) => {
    logger.info(
      { event: 'dns.changed', name: c.name, fqdn: c.fqdn, addresses: c.endpoints.map((e) => e.key), previous: c.previous.map((e) => e.key) },
      `endpoints of ${c.name} changed: ${c.endpoints.length} address(es)`,
    );
  });
  mesh.on('rateLimitError', (e) => {
    const cause = e.cause instanceof Error ? e.cause.message : undefined;
    logger.warn({ event: 'ratelimit.store', limit: e.limit, ...(cause !== undefined ? { cause } : {}) }, e.message);
  });
  mesh.on('kubernetesStatus', ({ description, status }) => {
    const facts = { event: 'kubernetes.watch', collection: description, synced: status.synced, restarts: status.restarts };
    if (status.error) {
      logger.warn({ ...facts, error: status.error.message }, `watch of ${description} failing, last known state kept: ${status.error.message}`);
    } else {
      logger.debug(facts, `watch of ${description} ${status.synced ? 'in sync' : 'starting'}`);
    }
  });
  const loaded = (b: CertificateBundle, previous: CertificateBundle | undefined): void => {
    logger.info(
      {
        event: 'certificate.rotated',
        source: b.source,
        identity: b.identity?.uri,
        notAfter: b.notAfter.toISOString(),
        fingerprint: b.fingerprint,
        rotated: previous !== undefined,
      },
      `workload certificate ${previous ? 'rotated' : 'loaded'} from ${b.source}: ${b.identity?.uri ?? 'no SPIFFE ID'}, valid until ${b.notAfter.toISOString()}`,
    );
  };
  const refused = (e: CertificateError): void => {
    logger.error(
      { event: 'certificate.rejected', code: e.code, problem: e.problem, file: e.file },
      `workload certificates refused, the ones in use stay: ${e.message}`,
    );
  };
  // Read before the mesh existed: say so once, at startup.
  if (certificates?.current) loaded(certificates.current, undefined);
  if (certificates?.lastError) refused(certificates.lastError);
  mesh.on('certificateRotated', loaded);
  mesh.on('certificateRejected', refused);
  mesh.on('certificateExpiring', (b, secondsLeft) => {
    logger.warn(
      { event: 'certificate.expiring', source: b.source, identity: b.identity?.uri, notAfter: b.notAfter.toISOString(), secondsLeft: Math.round(secondsLeft) },
      secondsLeft > 0
        ? `workload certificate from ${b.source} expires in ${Math.round(secondsLeft)} s and has not been rotated`
        : `workload certificate from ${b.source} expired at ${b.notAfter.toISOString()}`,
    );
  });
  mesh.on('credentialRejected', ({ source, error, kept }) => {
    logger.error(
      { event: 'credential.rejected', code: error.code, problem: error.problem, source, file: error.file, kept },
      `client credentials of ${source} refused, ${kept ? 'the last good ones stay' : 'there are none: requests needing them fail'}: ${error.message}`,
    );
  });
  mesh.on('inboundDenied', (e) => {
    const facts = e.code === 'ERR_MESH_ACCESS_DENIED' ? { policy: e.policy, action: e.action } : { reason: e.reason, issuer: e.issuer };
    logger.info({ event: 'inbound.denied', code: e.code, ...facts, method: e.method, path: e.path, source: e.source }, e.message);
  });
  mesh.on('inboundAudit', (a) => {
    logger.info(
      { event: 'inbound.audit', kind: a.kind, policy: a.policy, result: a.result, method: a.method, path: a.path, source: a.source },
      `${a.kind === 'audit' ? 'AUDIT' : 'dry-run'} policy ${a.policy} ${a.result === 'matched' ? 'matched' : `would have ${a.result}`} ${a.method} ${a.path} from ${a.source}`,
    );
  });
  mesh.on('inboundRejected', (e) => {
    logger.info({ event: 'inbound.rejected', code: e.code, reason: e.reason, mode: e.mode, port: e.port, remoteAddress: e.remoteAddress }, e.message);
  });
  mesh.on('kubernetesNote', (note) => {
    logger.info({ event: 'kubernetes.note', collection: note.collection, ...(note.error ? { error: note.error.message } : {}) }, note.message);
  });
}
