// Apart from the logging code so that the package's entry can export the names without loading it.

/** The `event` field of every structured event the mesh logs; stable across versions. */
export const MESH_LOG_EVENTS = [
  'config.accepted',
  'config.rejected',
  'endpoint.ejected',
  'endpoint.returned',
  'breaker.changed',
  'dns.failed',
  'dns.changed',
  'ratelimit.store',
  'kubernetes.watch',
  'kubernetes.note',
  'certificate.rotated',
  'certificate.rejected',
  'certificate.expiring',
  'credential.rejected',
  'inbound.rejected',
  'inbound.denied',
  'inbound.audit',
] as const;

export type MeshLogEvent = (typeof MESH_LOG_EVENTS)[number];
