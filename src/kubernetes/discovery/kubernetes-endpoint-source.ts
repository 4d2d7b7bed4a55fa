import { EventEmitter } from 'node:events';
import type { CancelTimer, MeshClock } from '../../clock.js';
import { systemClock } from '../../clock.js';
import type { KubeChange, KubeCollection, KubeCollectionStatus, KubeWatcher } from '../collection.js';
import { objectKey } from '../collection.js';
import type { KubeEndpointSlice, KubeNode, KubePodMetadata, KubeService, KubeSliceEndpoint } from '../types.js';
import { ENDPOINT_SLICES, NODES, POD_METADATA, SERVICE_NAME_LABEL, SERVICES } from '../types.js';
import type { Locality } from '../../discovery/endpoint.js';
import { UNKNOWN_LOCALITY } from '../../discovery/endpoint.js';
import { servicePortProtocol } from './port-protocol.js';
import type { KubeServiceRef } from './service-host.js';
import { parseServiceHost } from './service-host.js';
import type { ServiceEndpoints } from './slice-endpoints.js';
import { sliceEndpoints } from './slice-endpoints.js';

const REGION_LABEL = 'topology.kubernetes.io/region';
const ZONE_LABEL = 'topology.kubernetes.io/zone';
const SUBZONE_LABEL = 'topology.istio.io/subzone';

export interface KubernetesEndpointSourceOptions {
  /** Default `cluster.local`. */
  readonly clusterDomain?: string;
  /** The caller's namespace: its collections open at once, as most calls stay in it. */
  readonly namespace?: string;
  /**
   * The region of an endpoint whose node cannot be read (no RBAC on Nodes): the slice gives the
   * zone only. Default unknown (`''`); the mesh passes the caller's region, as a cluster's nodes
   * are nearly always in one region.
   */
  readonly fallbackRegion?: string;
  /**
   * How long the first requests to a namespace's services wait for its collections' first list,
   * from when they open; after it they are answered from what is known. Default 10 000 ms.
   */
  readonly warmupTimeoutMs?: number;
  /** Runs the warm-up bound. Default the system clock. */
  readonly clock?: MeshClock;
}

/** A note about what the source can see, emitted once per cause. */
export interface KubernetesDiscoveryNote {
  readonly collection: string;
  readonly message: string;
  readonly error: Error | undefined;
}

export interface KubernetesEndpointSourceEvents {
  /** The endpoints of Service `namespace/name` may have changed. */
  change: [serviceKey: string];
  /** A collection is forbidden or failing; what is known keeps serving. */
  note: [note: KubernetesDiscoveryNote];
}

/** What the source keeps about one slice, to undo its index entries when it changes. */
interface SliceRefs {
  readonly service: string;
  readonly pods: readonly string[];
  readonly nodes: readonly string[];
}

/** The collections of one namespace and the indexes over its slices. */
interface NamespaceWatch {
  readonly namespace: string;
  readonly slices: KubeCollection<KubeEndpointSlice>;
  readonly services: KubeCollection<KubeService>;
  readonly pods: KubeCollection<KubePodMetadata>;
  /** Service name → keys of its slices. */
  readonly byService: Map<string, Set<string>>;
  readonly sliceRefs: Map<string, SliceRefs>;
  /** Pod name → keys of the slices naming it. */
  readonly podSlices: Map<string, Set<string>>;
  /** Pod name → the labels last seen, to tell a label change from any other update. */
  readonly podLabels: Map<string, Readonly<Record<string, string>> | undefined>;
  /** Pending until every collection has listed once (or failed); undefined after. */
  settled: Promise<void> | undefined;
  readonly unsubscribe: (() => void)[];
}

/**
 * Endpoints of Kubernetes services from the API: EndpointSlices merged per Service, the Service's
 * ports mapped to the slices', Pod labels for subsets, Node labels for locality. Collections
 * open per namespace when a host of that namespace is first needed; a change to any of them
 * emits `change` for the Services it concerns only, so only their clusters are recomputed.
 */
export class KubernetesEndpointSource extends EventEmitter<KubernetesEndpointSourceEvents> {
  readonly clusterDomain: string;
  private readonly fallbackRegion: string;
  private readonly namespaces = new Map<string, NamespaceWatch>();
  private nodes: KubeCollection<KubeNode> | undefined;
  /** Settled once Nodes listed or failed; undefined after. */
  private nodesSettled: Promise<void> | undefined;
  /** Node name → `namespace/slice` keys of slices with endpoints on it. */
  private readonly nodeSlices = new Map<string, Set<string>>();
  private readonly nodeLocality = new Map<string, string>();
  private readonly noted = new Set<string>();
  private readonly notesList: KubernetesDiscoveryNote[] = [];
  private readonly warmupTimeoutMs: number;
  private readonly timers = new Set<CancelTimer>();
  private readonly clock: MeshClock;
  private readonly localities = new Map<string, Locality>();
  /** `knows` runs per request for bare names no configuration covers: parse each host once. */
  private readonly parsed = new Map<string, KubeServiceRef | null>();
  private readonly unsubscribe: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly watcher: KubeWatcher,
    options: KubernetesEndpointSourceOptions = {},
  ) {
    super();
    this.clusterDomain = options.clusterDomain ?? 'cluster.local';
    this.fallbackRegion = options.fallbackRegion ?? '';
    this.warmupTimeoutMs = options.warmupTimeoutMs ?? 10_000;
    this.clock = options.clock ?? systemClock;
    if (options.namespace !== undefined) this.watch(options.namespace);
  }

  /** The service a host names, if it is `[hostname.]name.ns.svc.<clusterDomain>`. */
  parse(host: string): KubeServiceRef | undefined {
    let ref = this.parsed.get(host);
    if (ref === undefined) {
      ref = parseServiceHost(host, this.clusterDomain) ?? null;
      // Hosts come from code and configuration, a small set; a runaway set is simply dropped.
      if (this.parsed.size >= 10_000) this.parsed.clear();
      this.parsed.set(host, ref);
    }
    return ref ?? undefined;
  }

  /**
   * Whether the API has the Service a host names. Opens the namespace's collections if needed;
   * false until they have listed.
   */
  knows(host: string): boolean {
    const ref = this.parse(host);
    if (!ref || this.closed) return false;
    return this.watch(ref.namespace).services.items.has(ref.key);
  }

  /**
   * Opens the namespace's collections (and Nodes) if not yet open. Returns a promise while they
   * have not all listed once (or failed), undefined when they have.
   */
  ready(namespace: string): Promise<void> | undefined {
    const ns = this.watch(namespace);
    if (ns.settled === undefined && this.nodesSettled === undefined) return undefined;
    return Promise.all([ns.settled, this.nodesSettled]).then(() => undefined);
  }

  /**
   * For a host no configuration covers, written as a bare name: a promise while the caller's
   * namespace has not listed yet (whether the API has the Service is not known), else undefined.
   */
  pending(host: string): Promise<void> | undefined {
    const ref = this.parse(host);
    return ref && !this.closed ? this.ready(ref.namespace) : undefined;
  }

  /** What the source noted about the collections it cannot read (one per cause), oldest first. */
  notes(): readonly KubernetesDiscoveryNote[] {
    return this.notesList;
  }

  /** The current endpoints of a Service port (all of them: subsets are selected by the caller). */
  endpoints(ref: KubeServiceRef, host: string, port: number): ServiceEndpoints {
    const ns = this.watch(ref.namespace);
    const service = ns.services.items.get(ref.key);
    if (!service) {
      const error = ns.services.status.error ?? ns.slices.status.error;
      const why = error
        ? `the Kubernetes API could not be read (${error.message})`
        : ns.services.status.synced
          ? `no Service ${ref.name} in namespace ${ref.namespace}`
          : `the Kubernetes API has not listed the Services of namespace ${ref.namespace} yet`;
      return { endpoints: [], reason: `no healthy upstream for ${host}: ${why}`, terminating: [] };
    }
    if (!ns.slices.status.synced && ns.slices.status.error) {
      return {
        endpoints: [],
        reason: `no healthy upstream for ${host}: the Kubernetes API could not be read (${ns.slices.status.error.message})`,
        terminating: [],
      };
    }
    const keys = ns.byService.get(ref.name);
    const slices: KubeEndpointSlice[] = [];
    if (keys)
      for (const key of keys) {
        const slice = ns.slices.items.get(key);
        if (slice) slices.push(slice);
      }
    return sliceEndpoints(host, service, port, slices, ref.hostname, {
      podLabels: (namespace, pod) => this.namespaces.get(namespace)?.pods.items.get(`${namespace}/${pod}`)?.metadata.labels,
      locality: (e) => this.locality(e),
    });
  }

  /**
   * The identities of a Service's workloads that its annotations declare, as istiod reads them:
   * `alpha.istio.io/canonical-serviceaccounts` (identities as written) and
   * `alpha.istio.io/kubernetes-serviceaccounts` (service accounts of the Service's namespace).
   * Pods are watched by their metadata only, so their own service accounts are not known here.
   */
  serviceAccounts(ref: KubeServiceRef): { readonly subjectAltNames: readonly string[]; readonly serviceAccounts: readonly string[] } | undefined {
    const annotations = this.namespaces.get(ref.namespace)?.services.items.get(ref.key)?.metadata.annotations;
    if (!annotations) return undefined;
    const list = (name: string): string[] =>
      (annotations[name] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');
    const subjectAltNames = list('alpha.istio.io/canonical-serviceaccounts');
    const serviceAccounts = list('alpha.istio.io/kubernetes-serviceaccounts').map((sa) => `${ref.namespace}/${sa}`);
    return subjectAltNames.length > 0 || serviceAccounts.length > 0 ? { subjectAltNames, serviceAccounts } : undefined;
  }

  /** The protocol of the Service port a caller used (`GRPC`, `HTTP2`...), when the Service says. */
  protocol(ref: KubeServiceRef, port: number): string | undefined {
    const servicePort = this.namespaces
      .get(ref.namespace)
      ?.services.items.get(ref.key)
      ?.spec?.ports?.find((p) => p.port === port);
    return servicePort ? servicePortProtocol(servicePort) : undefined;
  }

  close(): void {
    this.closed = true;
    for (const cancel of this.timers) cancel();
    this.timers.clear();
    for (const u of this.unsubscribe) u();
    for (const ns of this.namespaces.values()) for (const u of ns.unsubscribe) u();
    this.unsubscribe.length = 0;
    this.removeAllListeners();
  }

  private locality(e: KubeSliceEndpoint): Locality {
    const node = e.nodeName !== undefined ? this.nodes?.items.get(e.nodeName) : undefined;
    const labels = node?.metadata.labels;
    if (labels) return this.intern(labels[REGION_LABEL] ?? '', labels[ZONE_LABEL] ?? e.zone ?? '', labels[SUBZONE_LABEL] ?? '');
    if (e.zone === undefined) return UNKNOWN_LOCALITY;
    return this.intern(this.fallbackRegion, e.zone, '');
  }

  /** One object per distinct locality: 10,000 endpoints share a handful. */
  private intern(region: string, zone: string, subZone: string): Locality {
    const key = `${region}/${zone}/${subZone}`;
    let locality = this.localities.get(key);
    if (!locality) this.localities.set(key, (locality = Object.freeze({ region, zone, subZone })));
    return locality;
  }

  private watch(namespace: string): NamespaceWatch {
    const existing = this.namespaces.get(namespace);
    if (existing) return existing;
    this.watchNodes();
    const slices = this.watcher.collection<KubeEndpointSlice>(ENDPOINT_SLICES, { namespace, labelSelector: SERVICE_NAME_LABEL });
    const services = this.watcher.collection<KubeService>(SERVICES, { namespace });
    const pods = this.watcher.collection<KubePodMetadata>(POD_METADATA, { namespace });
    const ns: NamespaceWatch = {
      namespace,
      slices,
      services,
      pods,
      byService: new Map(),
      sliceRefs: new Map(),
      podSlices: new Map(),
      podLabels: new Map(),
      settled: undefined,
      unsubscribe: [],
    };
    this.namespaces.set(namespace, ns);
    const all = [slices, services, pods];
    const settled = this.bounded(Promise.all(all.map((c) => settledOf(c)))).then(() => {
      if (ns.settled === settled) ns.settled = undefined;
    });
    if (!all.every(isSettled)) ns.settled = settled;
    for (const c of all) ns.unsubscribe.push(c.onStatus((s) => this.noteStatus(c, s)));
    // Whatever way a reflector delivers its first list, the indexes are rebuilt once it is in.
    let slicesSynced = slices.status.synced;
    ns.unsubscribe.push(
      slices.onStatus((s) => {
        if (s.synced && !slicesSynced) this.reindex(ns);
        slicesSynced = s.synced;
      }),
    );
    ns.unsubscribe.push(
      slices.onChange((changes) => this.slicesChanged(ns, changes)),
      services.onChange((changes) => this.emitAll(changes.map((c) => objectKey(c.object)))),
      pods.onChange((changes) => this.podsChanged(ns, changes)),
    );
    // What the collections held before we subscribed.
    for (const slice of slices.items.values()) this.indexSlice(ns, objectKey(slice), slice);
    for (const pod of pods.items.values()) ns.podLabels.set(pod.metadata.name, pod.metadata.labels);
    return ns;
  }

  private watchNodes(): void {
    if (this.nodes) return;
    const nodes = this.watcher.collection<KubeNode>(NODES);
    this.nodes = nodes;
    if (!isSettled(nodes)) {
      const settled = this.bounded(settledOf(nodes)).then(() => {
        if (this.nodesSettled === settled) this.nodesSettled = undefined;
      });
      this.nodesSettled = settled;
    }
    for (const node of nodes.items.values()) this.nodeLocality.set(node.metadata.name, nodeLocality(node));
    this.unsubscribe.push(
      nodes.onStatus((s) => this.noteStatus(nodes, s)),
      nodes.onChange((changes) => this.nodesChanged(changes)),
    );
  }

  /** `first`, or the warm-up bound if that comes sooner: a hung list never holds requests for long. */
  private bounded(first: Promise<unknown>): Promise<void> {
    return new Promise<void>((resolve) => {
      const cancel = this.clock.schedule(
        this.warmupTimeoutMs,
        () => {
          this.timers.delete(cancel);
          resolve();
        },
        'background',
      );
      this.timers.add(cancel);
      void first.then(() => {
        cancel();
        this.timers.delete(cancel);
        resolve();
      });
    });
  }

  private slicesChanged(ns: NamespaceWatch, changes: readonly KubeChange<KubeEndpointSlice>[]): void {
    const affected = new Set<string>();
    for (const { type, object } of changes) {
      const key = objectKey(object);
      const before = ns.sliceRefs.get(key);
      if (before) affected.add(`${ns.namespace}/${before.service}`);
      this.unindexSlice(ns, key);
      if (type !== 'DELETED') {
        const after = this.indexSlice(ns, key, object);
        if (after) affected.add(`${ns.namespace}/${after.service}`);
      }
    }
    this.emitAll(affected);
  }

  private reindex(ns: NamespaceWatch): void {
    const affected = new Set<string>();
    for (const [key, refs] of ns.sliceRefs) {
      affected.add(`${ns.namespace}/${refs.service}`);
      this.unindexSlice(ns, key);
    }
    for (const [key, slice] of ns.slices.items) {
      const refs = this.indexSlice(ns, key, slice);
      if (refs) affected.add(`${ns.namespace}/${refs.service}`);
    }
    for (const p of ns.pods.items.values()) ns.podLabels.set(p.metadata.name, p.metadata.labels);
    this.emitAll(affected);
  }

  private indexSlice(ns: NamespaceWatch, key: string, slice: KubeEndpointSlice): SliceRefs | undefined {
    const service = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    if (service === undefined) return undefined;
    const pods = new Set<string>();
    const nodes = new Set<string>();
    for (const e of slice.endpoints ?? []) {
      if (e.targetRef?.kind === 'Pod' && e.targetRef.name) pods.add(e.targetRef.name);
      if (e.nodeName) nodes.add(e.nodeName);
    }
    const refs: SliceRefs = { service, pods: [...pods], nodes: [...nodes] };
    ns.sliceRefs.set(key, refs);
    addTo(ns.byService, service, key);
    for (const pod of refs.pods) addTo(ns.podSlices, pod, key);
    for (const node of refs.nodes) addTo(this.nodeSlices, node, key);
    return refs;
  }

  private unindexSlice(ns: NamespaceWatch, key: string): void {
    const refs = ns.sliceRefs.get(key);
    if (!refs) return;
    ns.sliceRefs.delete(key);
    removeFrom(ns.byService, refs.service, key);
    for (const pod of refs.pods) removeFrom(ns.podSlices, pod, key);
    for (const node of refs.nodes) removeFrom(this.nodeSlices, node, key);
  }

  private podsChanged(ns: NamespaceWatch, changes: readonly KubeChange<KubePodMetadata>[]): void {
    const affected = new Set<string>();
    for (const { type, object } of changes) {
      const name = object.metadata.name;
      const labels = type === 'DELETED' ? undefined : object.metadata.labels;
      const had = ns.podLabels.has(name);
      // Most pod updates (status, annotations) leave the labels alone: nothing to recompute.
      if (had && sameLabels(ns.podLabels.get(name), labels) && type !== 'DELETED') continue;
      if (type === 'DELETED') ns.podLabels.delete(name);
      else ns.podLabels.set(name, labels);
      for (const sliceKey of ns.podSlices.get(name) ?? []) {
        const refs = ns.sliceRefs.get(sliceKey);
        if (refs) affected.add(`${ns.namespace}/${refs.service}`);
      }
    }
    this.emitAll(affected);
  }

  private nodesChanged(changes: readonly KubeChange<KubeNode>[]): void {
    const affected = new Set<string>();
    for (const { type, object } of changes) {
      const name = object.metadata.name;
      const locality = type === 'DELETED' ? undefined : nodeLocality(object);
      if (locality === this.nodeLocality.get(name)) continue;
      if (locality === undefined) this.nodeLocality.delete(name);
      else this.nodeLocality.set(name, locality);
      for (const sliceKey of this.nodeSlices.get(name) ?? []) {
        const slash = sliceKey.indexOf('/');
        const refs = this.namespaces.get(sliceKey.slice(0, slash))?.sliceRefs.get(sliceKey);
        if (refs) affected.add(`${sliceKey.slice(0, slash)}/${refs.service}`);
      }
    }
    this.emitAll(affected);
  }

  private emitAll(serviceKeys: Iterable<string>): void {
    if (this.closed) return;
    for (const key of serviceKeys) this.emit('change', key);
  }

  /** One note per collection and cause (a forbidden Nodes list is expected with a namespaced role). */
  private noteStatus(collection: { readonly description: string }, status: KubeCollectionStatus): void {
    const error = status.error;
    if (!error || this.closed) return;
    const forbidden = isForbidden(error);
    const id = `${collection.description}|${forbidden ? 'forbidden' : error.message}`;
    if (this.noted.has(id)) return;
    this.noted.add(id);
    const message =
      collection === this.nodes && forbidden
        ? `${collection.description}: forbidden; endpoint locality comes from EndpointSlice zones (region ${this.fallbackRegion || 'unknown'})`
        : `${collection.description}: ${error.message}; the last known state keeps serving`;
    const note: KubernetesDiscoveryNote = { collection: collection.description, message, error };
    this.notesList.push(note);
    if (this.notesList.length > 100) this.notesList.shift();
    if (this.listenerCount('note') > 0) this.emit('note', note);
  }
}

type KubeObjectLike = KubeEndpointSlice | KubeService | KubePodMetadata | KubeNode;

function nodeLocality(node: KubeNode): string {
  const l = node.metadata.labels ?? {};
  return `${l[REGION_LABEL] ?? ''}/${l[ZONE_LABEL] ?? ''}/${l[SUBZONE_LABEL] ?? ''}`;
}

function isSettled(c: KubeCollection<KubeObjectLike>): boolean {
  return c.status.synced || c.status.error !== undefined;
}

/** Resolves when the collection has listed once, or reports an error (it may never list then). */
function settledOf(c: KubeCollection<KubeObjectLike>): Promise<void> {
  if (isSettled(c)) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const off = c.onStatus((s) => {
      if (s.synced || s.error !== undefined) {
        off();
        resolve();
      }
    });
    c.synced.then(
      () => {
        off();
        resolve();
      },
      () => {
        off();
        resolve();
      },
    );
  });
}

/** 403 however the reflector words it: an HTTP status on the error, or its message. */
export function isForbidden(error: Error): boolean {
  const e = error as Error & { statusCode?: unknown; code?: unknown; status?: unknown };
  return e.statusCode === 403 || e.code === 403 || e.status === 403 || /\b403\b|forbidden/i.test(error.message);
}

function sameLabels(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>> | undefined): boolean {
  if (a === b) return true;
  const ak = Object.keys(a ?? {});
  if (ak.length !== Object.keys(b ?? {}).length) return false;
  for (const k of ak) if (a?.[k] !== b?.[k]) return false;
  return true;
}

function addTo(map: Map<string, Set<string>>, key: string, value: string): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string): void {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}
