import { systemClock } from '../clock.js';
import { dnsPlanEndpoints, planEndpoints } from '../cluster/endpoint-plan.js';
import type { Snapshot } from '../config/snapshot.js';
import { createMeshDnsSource } from '../discovery/dns/index.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { RouteExplanation } from '../inspect/explain-route.js';

/** One DNS name behind a destination, as looked up now. */
export interface ExplainedDnsName {
  /** The name as the mesh watches it (lowercase, no trailing dot). */
  readonly name: string;
  /** What is asked: `A` (or AAAA), or `SRV _<port>._tcp.<name>, then A`. */
  readonly query: string;
  /** The name that answered (an SRV name when SRV records answered); undefined when none did. */
  readonly answeredBy: string | undefined;
  /** The failed query's message, when the lookup failed. */
  readonly error: string | undefined;
}

/** What DNS answers now for a destination whose endpoints come from DNS. */
export interface ResolvedDestination {
  readonly names: readonly ExplainedDnsName[];
  /** As the mesh would balance over them: entry labels and weights applied, the subset selected. */
  readonly endpoints: readonly Endpoint[];
  /** Why `endpoints` is empty, when it is: the 503 the mesh would answer. */
  readonly reason: string | undefined;
}

/**
 * Looks up the DNS names behind each destination of `explanation` once, as the mesh would
 * (resolv.conf, or `servers`; the search list of a pod of the snapshot's namespace outside a
 * pod). Undefined for destinations whose endpoints do not come from DNS.
 */
export async function resolveDestinations(
  snapshot: Snapshot,
  explanation: RouteExplanation,
  servers: readonly string[] | undefined,
): Promise<(ResolvedDestination | undefined)[]> {
  const source = createMeshDnsSource(servers !== undefined ? { servers } : {}, snapshot.namespace, snapshot.clusterDomain, systemClock);
  try {
    return await Promise.all(
      explanation.destinations.map(async (d): Promise<ResolvedDestination | undefined> => {
        const plan = d.port !== undefined ? planEndpoints(snapshot, d.host, d.subset, d.port, source) : undefined;
        if (plan?.kind !== 'dns') return undefined;
        const keys = plan.bindings.map((b) => source.watch({ ...b.spec, key: b.key }));
        await Promise.allSettled(keys.map((key) => source.ready(key)));
        const names = plan.bindings.map((b): ExplainedDnsName => {
          const status = source.status(b.key);
          const name = status?.name ?? b.spec.name;
          return {
            name,
            query: b.spec.portName !== undefined ? `SRV _${b.spec.portName}._${b.spec.protocol ?? 'tcp'}.${name}, then A` : 'A',
            answeredBy: status?.fqdn,
            error: status?.endpoints === undefined ? status?.lastError?.message : undefined,
          };
        });
        return { names, ...dnsPlanEndpoints(plan, (key) => source.status(key)) };
      }),
    );
  } finally {
    source.close();
  }
}
