import type { Cluster, ResolvedTls } from '../cluster/cluster.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { Snapshot } from '../config/snapshot.js';
import type { Upstream } from '../request-protocol.js';
import { resolveServiceHost } from '../routing/resolve-host.js';
import type { CompiledDestination } from '../routing/route-table.js';
import type { MeshTls } from '../security/mesh-tls.js';
import type { TlsOrigination } from '../security/tls-settings.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';
import { TlsAgents } from '../transport/tls-agents.js';
import type { ClosableUpstream } from '../transport/passthrough-agent.js';
import { passthroughAgent } from '../transport/passthrough-agent.js';

/** What is remembered for one snapshot: the same names are asked for again and again. */
interface SnapshotMemo {
  readonly snapshot: Snapshot;
  readonly hosts: Map<string, string>;
  /** Clusters of route destinations, with the port they were found for. */
  readonly clusters: Map<CompiledDestination, { readonly cluster: Cluster; readonly port: number }>;
  /** A service's own clusters (no route names a destination), by host then port. */
  readonly services: Map<string, Map<number, Cluster>>;
  /** DestinationRule TLS of pass-through destinations, by host then port (null: none). */
  readonly passthroughTls: Map<string, Map<number, ResolvedTls | null>>;
  /** The cluster manager's `tlsVersion` the memo was filled under. */
  tlsVersion: number;
}

/**
 * Where calls go, looked up through the current snapshot and remembered for it: the service a
 * written host names, the cluster of a route destination, the DestinationRule TLS of a destination
 * without endpoints of its own, and the agents such destinations are sent through.
 */
export class Destinations {
  private memo: SnapshotMemo | undefined;
  private passthroughAgent: ClosableUpstream | undefined;
  readonly tlsAgents: TlsAgents;

  /** A Kubernetes Service port's protocol, for ports no ServiceEntry declares. */
  readonly portProtocolOf = (host: string, port: number): string | undefined => this.clusters.portProtocol(host, port);

  constructor(
    private readonly currentSnapshot: () => Snapshot,
    readonly clusters: ClusterManager,
    certificates: WorkloadCertificates | undefined,
  ) {
    this.tlsAgents = new TlsAgents(certificates);
  }

  /** The current snapshot; a new one (or new client credentials) starts a new memo. */
  snapshot(): Snapshot {
    return this.current().snapshot;
  }

  private current(): SnapshotMemo {
    const snapshot = this.currentSnapshot();
    const tlsVersion = this.clusters.tlsVersion;
    if (this.memo?.snapshot !== snapshot) {
      // Agents made under the previous rules finish what they carry; the new rules get their own.
      if (this.memo) this.tlsAgents.reset();
      this.memo = { snapshot, hosts: new Map(), clusters: new Map(), services: new Map(), passthroughTls: new Map(), tlsVersion };
    } else if (this.memo.tlsVersion !== tlsVersion) {
      // New client credentials: pass-through TLS is resolved again, its agents drain.
      this.tlsAgents.reset();
      this.memo.passthroughTls.clear();
      this.memo.tlsVersion = tlsVersion;
    }
    return this.memo;
  }

  /** The service host a written host name stands for. */
  serviceHost(hostname: string): string {
    const memo = this.current();
    let host = memo.hosts.get(hostname);
    if (host === undefined) {
      host = resolveServiceHost(hostname, memo.snapshot);
      memo.hosts.set(hostname, host);
    }
    return host;
  }

  /**
   * The cluster of a route destination, remembered per snapshot so the common request builds no
   * lookup key. A cluster still warming is not remembered: it may be replaced once it settles.
   */
  clusterFor(destination: CompiledDestination, port: number): Cluster | undefined {
    const clusters = this.current().clusters;
    const known = clusters.get(destination);
    if (known !== undefined && known.port === port) return known.cluster;
    const cluster = this.clusters.get(destination.host, destination.subset, port);
    if (cluster && !cluster.warming) clusters.set(destination, { cluster, port });
    return cluster;
  }

  /**
   * The cluster of a service's own port, when no route names a destination: remembered per
   * snapshot like {@link clusterFor}, so the call builds no lookup key.
   */
  serviceCluster(host: string, port: number): Cluster | undefined {
    const services = this.current().services;
    let ports = services.get(host);
    const known = ports?.get(port);
    if (known !== undefined) return known;
    const cluster = this.clusters.get(host, undefined, port);
    if (cluster && !cluster.warming) {
      if (!ports) services.set(host, (ports = new Map()));
      ports.set(port, cluster);
    }
    return cluster;
  }

  /**
   * The DestinationRule TLS of a destination without a cluster, found once per snapshot, host
   * and port (a plaintext pass-through then costs two map reads).
   */
  passthroughTls(host: string, port: number): ResolvedTls | undefined {
    const memo = this.current().passthroughTls;
    let ports = memo.get(host);
    if (!ports) {
      if (memo.size > 10_000) memo.clear();
      memo.set(host, (ports = new Map()));
    }
    let tls = ports.get(port);
    if (tls === undefined) {
      tls = this.clusters.tlsFor(host, undefined, port) ?? null;
      ports.set(port, tls);
    }
    return tls ?? undefined;
  }

  /** The agent of destinations without endpoints of their own, sent as named. */
  passthrough(): Upstream {
    this.passthroughAgent ??= passthroughAgent();
    return this.passthroughAgent;
  }

  /** The agent that originates a DestinationRule's TLS (ISTIO_MUTUAL too) to such a destination. */
  tlsAgent(tls: TlsOrigination | MeshTls): Upstream {
    return this.tlsAgents.get(tls);
  }

  /** Closes every agent (the clusters' pools are the cluster manager's). */
  async close(error: Error): Promise<void> {
    await Promise.all([this.passthroughAgent?.destroy(error), this.tlsAgents.destroy()]);
  }
}
