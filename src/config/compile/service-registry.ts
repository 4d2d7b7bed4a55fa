import type { Endpoint } from '../../discovery/endpoint.js';
import { labelsMatch, parseLocality } from '../../discovery/endpoint.js';
import type { MeshResource } from '../resource.js';
import { RecentCache } from '../recent-cache.js';
import { resourceRef } from '../resource.js';
import type { Steps } from '../slices.js';
import { every } from '../slices.js';
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
 * of one namespace for the same host have their endpoints merged, as Istio does. Yields between
 * ServiceEntries.
 */
export function* buildServiceRegistry(
  resources: readonly MeshResource[],
  ctx: CompileContext,
  sink: IssueSink,
  kept: ServiceEntryCache = new ServiceEntryCache(),
): Steps<HostTable<ServiceDef>> {
  const workloadEntries = new WorkloadIndex(resources.filter((r) => r.kind === 'WorkloadEntry') as WorkloadEntryResource[]);
  const entries = sortByAge(resources.filter((r) => r.kind === 'ServiceEntry') as ServiceEntryResource[]).filter((se) =>
    isExportedTo(se.spec.exportTo, se.metadata.namespace, ctx.namespace),
  );
  // Own namespace first, then by age: the first claim of a host wins.
  entries.sort((a, b) => Number(b.metadata.namespace === ctx.namespace) - Number(a.metadata.namespace === ctx.namespace));

  yield;

  const claims = new Map<string, Claim>();
  const pace = every(32);
  for (const se of entries) {
    if (pace()) yield;
    const spec = se.spec;
    const ns = se.metadata.namespace;
    const selected = spec.workloadSelector && !spec.endpoints ? workloadEntries.select(ns, spec.workloadSelector.labels) : [];
    const services = kept.services(se, selected);
    spec.hosts.forEach((rawHost, hostIndex) => {
      const host = rawHost.toLowerCase();
      const existing = claims.get(host);
      if (existing) {
        if (existing.service.namespace === ns) {
          // Entries of one namespace for the same host add their endpoints to the first one's ports.
          const ports = services.get(host)?.ports ?? [];
          for (const number of new Set(existing.service.ports.map((p) => p.number))) {
            const endpoints = ports.find((q) => q.number === number)?.endpoints ?? [];
            if (endpoints.length === 0) continue;
            const extra = existing.extra.get(number);
            if (extra) extra.push(...endpoints);
            else existing.extra.set(number, [...endpoints]);
          }
          const other = services.get(host);
          if (other) existing.others.push(other);
        } else {
          sink.warn({
            code: 'conflicting-service-entry',
            message: `host "${host}" is also declared by ServiceEntry ${existing.service.source.namespace}/${existing.service.source.name}, which takes precedence (caller's namespace first, then oldest)`,
            resource: resourceRef(se),
            path: `spec.hosts[${hostIndex}]`,
            location: locate(se, ['spec', 'hosts', hostIndex]),
          });
        }
        return;
      }
      const service = services.get(host);
      if (service) claims.set(host, { service, extra: new Map(), others: [] });
    });
  }
  kept.passed();
  yield;

  const table = new HostTable<ServiceDef>();
  for (const [host, { service, extra, others }] of claims) {
    if (extra.size === 0 && others.length === 0) {
      table.set(host, service);
      continue;
    }
    const ports = service.ports.map((p) => {
      const more = extra.get(p.number);
      return more ? { ...p, endpoints: [...p.endpoints, ...more] } : p;
    });
    // The identities of every entry of the namespace for the host (istiod's ServiceAccounts).
    const sans = [...new Set([service, ...others].flatMap((s) => s.subjectAltNames ?? []))];
    const accounts = [...new Set([service, ...others].flatMap((s) => s.serviceAccounts ?? []))];
    table.set(host, {
      ...service,
      ports,
      ...(sans.length > 0 ? { subjectAltNames: sans } : {}),
      ...(accounts.length > 0 ? { serviceAccounts: accounts } : {}),
    });
  }
  return table;
}

type WorkloadEntryResource = MeshResource<'WorkloadEntry', WorkloadSpec>;
type ServiceEntryResource = MeshResource<'ServiceEntry', ServiceEntrySpec>;

/**
 * The services a ServiceEntry declares (one per host, endpoints included), kept per entry while it
 * and the WorkloadEntries it selects are the same objects: a change to one entry rebuilds that
 * entry's services, and the others keep theirs (the same objects, so what depends on them can tell
 * nothing changed).
 */
export class ServiceEntryCache {
  private readonly kept = new RecentCache<MeshResource, { selected: readonly WorkloadEntryResource[]; services: ReadonlyMap<string, ServiceDef> }>();

  services(se: ServiceEntryResource, selected: readonly WorkloadEntryResource[]): ReadonlyMap<string, ServiceDef> {
    const hit = this.kept.get(se);
    if (hit && hit.selected.length === selected.length && hit.selected.every((we, i) => we === selected[i])) return hit.services;
    const services = declaredServices(se, selected);
    this.kept.set(se, { selected, services });
    return services;
  }

  /** The registry was built: entries of ServiceEntries that are gone are let go. */
  passed(): void {
    this.kept.passed();
  }
}

function declaredServices(se: ServiceEntryResource, selected: readonly WorkloadEntryResource[]): Map<string, ServiceDef> {
  const spec = se.spec;
  const workloads: readonly WorkloadSpec[] = spec.endpoints ?? selected.map((we) => we.spec);
  const resolution = spec.resolution ?? 'NONE';
  // The identities of the service's workloads (istiod's ServiceAccounts of the service).
  const serviceAccounts = [...new Set(workloads.filter((w) => w.serviceAccount).map((w) => `${se.metadata.namespace}/${w.serviceAccount}`))];
  const subjectAltNames = spec.subjectAltNames ?? [];
  const services = new Map<string, ServiceDef>();
  for (const rawHost of spec.hosts) {
    const host = rawHost.toLowerCase();
    if (services.has(host)) continue;
    const ports: ServicePort[] = (spec.ports ?? []).map((port) => {
      let endpoints: Endpoint[];
      if (workloads.length > 0) endpoints = workloads.map((w) => toEndpoint(w, port, host));
      else if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !host.startsWith('*')) {
        endpoints = [toEndpoint({}, port, host)];
      } else endpoints = [];
      return { number: port.number, name: port.name, protocol: port.protocol ?? 'TCP', endpoints };
    });
    services.set(host, {
      host,
      namespace: se.metadata.namespace,
      ports,
      resolution,
      location: spec.location ?? 'MESH_EXTERNAL',
      addresses: spec.addresses ?? [],
      source: resourceRef(se),
      ...(subjectAltNames.length > 0 ? { subjectAltNames } : {}),
      ...(serviceAccounts.length > 0 ? { serviceAccounts } : {}),
    });
  }
  return services;
}

/** The first ServiceEntry's service for a host, and endpoints later entries of its namespace add, per port. */
interface Claim {
  readonly service: ServiceDef;
  readonly extra: Map<number, Endpoint[]>;
  /** Services of later entries of its namespace for the host: their identities are merged in. */
  readonly others: ServiceDef[];
}

/**
 * WorkloadEntries by namespace and by label, so that selecting them for each ServiceEntry costs
 * the size of the answer rather than a pass over every WorkloadEntry.
 */
class WorkloadIndex {
  private readonly byNamespace = new Map<string, WorkloadEntryResource[]>();
  private readonly byLabel = new Map<string, WorkloadEntryResource[]>();

  constructor(entries: readonly WorkloadEntryResource[]) {
    for (const we of entries) {
      const ns = we.metadata.namespace;
      push(this.byNamespace, ns, we);
      for (const [key, value] of Object.entries(we.spec.labels ?? {})) push(this.byLabel, labelKey(ns, key, value), we);
    }
  }

  /** The entries of `namespace` whose labels match `selector`, in the order they were given. */
  select(namespace: string, selector: Readonly<Record<string, string>> | undefined): readonly WorkloadEntryResource[] {
    let candidates = this.byNamespace.get(namespace) ?? [];
    for (const [key, value] of Object.entries(selector ?? {})) {
      const withLabel = this.byLabel.get(labelKey(namespace, key, value)) ?? [];
      if (withLabel.length < candidates.length) candidates = withLabel;
    }
    return candidates.filter((we) => labelsMatch(selector, we.spec.labels ?? {}));
  }
}

const labelKey = (namespace: string, key: string, value: string) => `${namespace}\0${key}\0${value}`;

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
