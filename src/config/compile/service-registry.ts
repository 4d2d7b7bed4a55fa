import type { Endpoint } from '../../discovery/endpoint.js';
import { labelsMatch, parseLocality } from '../../discovery/endpoint.js';
import type { MeshResource } from '../resource.js';
import { resourceRef } from '../resource.js';
import type { Resolution, ServiceDef, ServicePort } from '../snapshot.js';
import type { CompileContext, IssueSink } from './context.js';
import { locate, sortByAge } from './context.js';
import { HostTable } from './hosts.js';
import { isExportedTo } from './visibility.js';

interface WorkloadSpec {
  readonly address?: string;
  readonly serviceAccount?: string;
  readonly ports?: Readonly<Record<string, number>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly network?: string;
  readonly locality?: string;
  readonly weight?: number;
}

interface PortSpec {
  readonly number: number;
  readonly name: string;
  readonly protocol?: string;
  readonly targetPort?: number;
}

interface ServiceEntrySpec {
  readonly hosts: readonly string[];
  readonly addresses?: readonly string[];
  readonly ports?: readonly PortSpec[];
  readonly location?: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  readonly resolution?: Resolution;
  readonly endpoints?: readonly WorkloadSpec[];
  readonly workloadSelector?: { readonly labels?: Readonly<Record<string, string>> };
  readonly exportTo?: readonly string[];
  readonly subjectAltNames?: readonly string[];
}

const TLS_MODE_LABEL = 'security.istio.io/tlsMode';

function toEndpoint(w: WorkloadSpec, port: PortSpec, fallbackAddress: string): Endpoint {
  const address = w.address ?? fallbackAddress;
  const number = w.ports?.[port.name] ?? port.targetPort ?? port.number;
  // Istio's getTLSModeFromWorkloadEntry: the label if present, else `istio` with a service account.
  const tlsMode = w.labels?.[TLS_MODE_LABEL] === undefined && w.serviceAccount ? 'istio' : undefined;
  return {
    key: `${address}:${number}`,
    address,
    port: number,
    weight: w.weight && w.weight > 0 ? w.weight : 1,
    labels: w.labels ?? {},
    locality: parseLocality(w.locality),
    ...(w.network ? { network: w.network } : {}),
    ready: true,
    ...(tlsMode ? { tlsMode } : {}),
  };
}

/**
 * The services the caller can see, from ServiceEntry (with WorkloadEntry selection). Where several
 * visible ServiceEntries declare a host, the caller's own namespace wins, then the oldest; entries
 * of one namespace for the same host have their endpoints merged, as Istio does.
 */
export function buildServiceRegistry(
  resources: readonly MeshResource[],
  ctx: CompileContext,
  sink: IssueSink,
): HostTable<ServiceDef> {
  const workloadEntries = resources.filter((r) => r.kind === 'WorkloadEntry') as MeshResource<'WorkloadEntry', WorkloadSpec>[];
  const entries = sortByAge(resources.filter((r) => r.kind === 'ServiceEntry') as MeshResource<'ServiceEntry', ServiceEntrySpec>[])
    .filter((se) => isExportedTo(se.spec.exportTo, se.metadata.namespace, ctx.namespace));
  // Own namespace first, then by age: the first claim of a host wins.
  entries.sort((a, b) => Number(b.metadata.namespace === ctx.namespace) - Number(a.metadata.namespace === ctx.namespace));

  const table = new HostTable<ServiceDef>();
  for (const se of entries) {
    const spec = se.spec;
    const ns = se.metadata.namespace;
    const selected = spec.workloadSelector
      ? workloadEntries.filter((we) => we.metadata.namespace === ns && labelsMatch(spec.workloadSelector?.labels, we.spec.labels ?? {}))
      : [];
    const workloads: readonly WorkloadSpec[] = spec.endpoints ?? selected.map((we) => we.spec);
    const resolution = spec.resolution ?? 'NONE';
    // The identities of the service's workloads (istiod's ServiceAccounts of the service).
    const serviceAccounts = [...new Set(workloads.filter((w) => w.serviceAccount).map((w) => `${ns}/${w.serviceAccount}`))];
    const subjectAltNames = spec.subjectAltNames ?? [];
    spec.hosts.forEach((rawHost, hostIndex) => {
      const host = rawHost.toLowerCase();
      const ports: ServicePort[] = (spec.ports ?? []).map((port) => {
        let endpoints: Endpoint[];
        if (workloads.length > 0) endpoints = workloads.map((w) => toEndpoint(w, port, host));
        else if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !host.startsWith('*')) {
          endpoints = [toEndpoint({}, port, host)];
        } else endpoints = [];
        return { number: port.number, name: port.name, protocol: port.protocol ?? 'TCP', endpoints };
      });
      const existing = table.getPattern(host);
      if (existing) {
        if (existing.namespace === ns) {
          table.set(host, mergeSameNamespace(existing, ports, subjectAltNames, serviceAccounts));
        } else {
          sink.warn({
            code: 'conflicting-service-entry',
            message: `host "${host}" is also declared by ServiceEntry ${existing.source.namespace}/${existing.source.name}, which takes precedence (caller's namespace first, then oldest)`,
            resource: resourceRef(se),
            path: `spec.hosts[${hostIndex}]`,
            location: locate(se, ['spec', 'hosts', hostIndex]),
          });
        }
        return;
      }
      table.set(host, {
        host,
        namespace: ns,
        ports,
        resolution,
        location: spec.location ?? 'MESH_EXTERNAL',
        addresses: spec.addresses ?? [],
        source: resourceRef(se),
        ...(subjectAltNames.length > 0 ? { subjectAltNames } : {}),
        ...(serviceAccounts.length > 0 ? { serviceAccounts } : {}),
      });
    });
  }
  return table;
}

function mergeSameNamespace(existing: ServiceDef, ports: readonly ServicePort[], subjectAltNames: readonly string[], serviceAccounts: readonly string[]): ServiceDef {
  const merged = existing.ports.map((p) => {
    const extra = ports.find((q) => q.number === p.number);
    return extra ? { ...p, endpoints: [...p.endpoints, ...extra.endpoints] } : p;
  });
  const sans = [...new Set([...(existing.subjectAltNames ?? []), ...subjectAltNames])];
  const accounts = [...new Set([...(existing.serviceAccounts ?? []), ...serviceAccounts])];
  return { ...existing, ports: merged, ...(sans.length > 0 ? { subjectAltNames: sans } : {}), ...(accounts.length > 0 ? { serviceAccounts: accounts } : {}) };
}
