import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { writeFile } from 'node:fs/promises';

/**
 * An in-process Kubernetes API server for tests, speaking the real protocol to the official
 * client: discovery, list with resourceVersion and limit/continue, chunked watch streams
 * (ADDED / MODIFIED / DELETED / BOOKMARK / ERROR 410), bearer tokens (401), per-resource RBAC
 * (403), PartialObjectMetadata answers. One global resourceVersion counter, as etcd's revision.
 * Objects are stored once per group and kind and served in every registered version, as the real
 * server converts them.
 */

export interface FakeResourceType {
  /** `''` for the core group. */
  readonly group: string;
  /** Served versions, the preferred one first. */
  readonly versions: readonly string[];
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

export interface FakeKubeApiOptions {
  /** Resource kinds served from the start. Default: core Pods, Services, Nodes and EndpointSlices. */
  readonly resources?: readonly FakeResourceType[];
  /** The bearer token required; undefined accepts any request. */
  readonly token?: string;
  /** How many past events a watch may resume from; older resourceVersions get 410 Gone. Default 1000. */
  readonly historyLimit?: number;
  /**
   * How a too-old resourceVersion is refused on watch: an ERROR event with a 410 Status in a 200
   * stream (what the real server does) or an HTTP 410. Default `event`.
   */
  readonly goneAs?: 'event' | 'status';
}

export interface FakeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

interface StoredEvent {
  readonly revision: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly resource: string;
  readonly object: FakeObject;
}

interface OpenWatch {
  readonly resource: FakeResourceType;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly filter: (object: FakeObject) => boolean;
  readonly metadataOnly: boolean;
  readonly bookmarks: boolean;
  readonly fieldSelector: string | null;
  readonly res: ServerResponse;
}

export const CORE_RESOURCES: readonly FakeResourceType[] = [
  { group: '', versions: ['v1'], plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', versions: ['v1'], plural: 'services', kind: 'Service', namespaced: true },
  { group: '', versions: ['v1'], plural: 'nodes', kind: 'Node', namespaced: false },
  { group: 'discovery.k8s.io', versions: ['v1'], plural: 'endpointslices', kind: 'EndpointSlice', namespaced: true },
];

const ISTIO_NETWORKING_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'];
/** The Istio kinds as Istio 1.22+ serves them. */
export const ISTIO_RESOURCES: readonly FakeResourceType[] = [
  { group: 'networking.istio.io', versions: ISTIO_NETWORKING_VERSIONS, plural: 'virtualservices', kind: 'VirtualService', namespaced: true },
  { group: 'networking.istio.io', versions: ISTIO_NETWORKING_VERSIONS, plural: 'destinationrules', kind: 'DestinationRule', namespaced: true },
  { group: 'networking.istio.io', versions: ISTIO_NETWORKING_VERSIONS, plural: 'serviceentries', kind: 'ServiceEntry', namespaced: true },
  { group: 'networking.istio.io', versions: ISTIO_NETWORKING_VERSIONS, plural: 'workloadentries', kind: 'WorkloadEntry', namespaced: true },
  { group: 'networking.istio.io', versions: ISTIO_NETWORKING_VERSIONS, plural: 'sidecars', kind: 'Sidecar', namespaced: true },
  { group: 'networking.istio.io', versions: ['v1alpha3'], plural: 'envoyfilters', kind: 'EnvoyFilter', namespaced: true },
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'peerauthentications', kind: 'PeerAuthentication', namespaced: true },
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'authorizationpolicies', kind: 'AuthorizationPolicy', namespaced: true },
  { group: 'security.istio.io', versions: ['v1', 'v1beta1'], plural: 'requestauthentications', kind: 'RequestAuthentication', namespaced: true },
];

/** Gateway API routes as the standard-channel CRDs serve them (HTTPRoute v1 and v1beta1, GRPCRoute v1). */
export const GATEWAY_API_RESOURCES: readonly FakeResourceType[] = [
  { group: 'gateway.networking.k8s.io', versions: ['v1', 'v1beta1'], plural: 'httproutes', kind: 'HTTPRoute', namespaced: true },
  { group: 'gateway.networking.k8s.io', versions: ['v1'], plural: 'grpcroutes', kind: 'GRPCRoute', namespaced: true },
];

function resourceId(group: string, plural: string): string {
  return `${group}/${plural}`;
}

export class FakeKubeApi {
  private server!: Server;
  private readonly sockets = new Set<Socket>();
  private readonly types = new Map<string, FakeResourceType>();
  private readonly stores = new Map<string, Map<string, FakeObject>>();
  private history: StoredEvent[] = [];
  /** The oldest revision a watch may still resume from. */
  private compactedRevision = 0;
  private revision = 100;
  private readonly watches = new Set<OpenWatch>();
  private readonly forbidden = new Set<string>();
  /** Resource → requests held until `unstall` (a slow API server). */
  private readonly stalled = new Map<string, (() => void)[]>();
  private readonly snapshots = new Map<string, FakeObject[]>();
  private token: string | undefined;
  private readonly historyLimit: number;
  private readonly goneAs: 'event' | 'status';
  private unavailable = false;
  private held: Map<OpenWatch, string> | undefined;
  private uids = 0;
  port = 0;
  /** Every request's method and URL, oldest first: for tests that check how the API was used. */
  readonly requests: { readonly method: string; readonly url: string; readonly accept: string }[] = [];

  private constructor(options: FakeKubeApiOptions) {
    this.token = options.token;
    this.historyLimit = options.historyLimit ?? 1000;
    this.goneAs = options.goneAs ?? 'event';
    for (const type of options.resources ?? CORE_RESOURCES) this.serve(type);
  }

  static async start(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
    const api = new FakeKubeApi(options);
    await api.listen(0);
    return api;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A kubeconfig pointing at this server (context `fake`, namespace `namespace`). */
  kubeconfig(options: { token?: string; namespace?: string; context?: string } = {}): string {
    const token = options.token ?? this.token;
    const context = options.context ?? 'fake';
    return [
      'apiVersion: v1',
      'kind: Config',
      `current-context: ${context}`,
      'clusters:',
      `- name: fake`,
      `  cluster: { server: "${this.url}", insecure-skip-tls-verify: true }`,
      'users:',
      `- name: fake-user`,
      `  user: ${token === undefined ? '{}' : `{ token: "${token}" }`}`,
      'contexts:',
      `- name: ${context}`,
      `  context: { cluster: fake, user: fake-user${options.namespace ? `, namespace: ${options.namespace}` : ''} }`,
      '',
    ].join('\n');
  }

  async writeKubeconfig(path: string, options: { token?: string; namespace?: string; context?: string } = {}): Promise<string> {
    await writeFile(path, this.kubeconfig(options));
    return path;
  }

  /** Serves a resource kind (discovery and its endpoints). */
  serve(type: FakeResourceType): void {
    const id = resourceId(type.group, type.plural);
    this.types.set(id, type);
    if (!this.stores.has(id)) this.stores.set(id, new Map());
  }

  /** Stops serving a kind (its CRD deleted): discovery no longer lists it and its paths 404. */
  unserve(group: string, plural: string): void {
    this.types.delete(resourceId(group, plural));
  }

  /** Requires this bearer token from now on (undefined: any). Open watches stay open, as on a real server. */
  setToken(token: string | undefined): void {
    this.token = token;
  }

  /**
   * Answers 403 for list and watch of this resource (`plural` or `group/plural`) until `allow`;
   * `plural/name`: only for requests of that one object (`fieldSelector=metadata.name=<name>`),
   * as a Role whose `resourceNames` leave it out does.
   */
  forbid(resource: string): void {
    this.forbidden.add(resource);
  }

  allow(resource: string): void {
    this.forbidden.delete(resource);
  }

  /**
   * Holds every list and watch request of this resource (`plural` or `group/plural`) without an
   * answer until `unstall`, as an overloaded API server does.
   */
  stall(resource: string): void {
    if (!this.stalled.has(resource)) this.stalled.set(resource, []);
  }

  /** Answers the requests `stall` held, and the next ones at once. */
  unstall(resource: string): void {
    const held = this.stalled.get(resource) ?? [];
    this.stalled.delete(resource);
    for (const answer of held) answer();
  }

  /** How many requests `stall` holds now (tests wait for one to arrive). */
  stalledRequests(resource: string): number {
    return this.stalled.get(resource)?.length ?? 0;
  }

  /** Answers every request with 503 while true. */
  setUnavailable(unavailable: boolean): void {
    this.unavailable = unavailable;
    if (unavailable) this.dropWatches();
  }

  /** Closes every open watch stream, as an API server restart or a load balancer does. */
  dropWatches(): void {
    for (const watch of this.watches) watch.res.end();
    this.watches.clear();
  }

  /** Forgets every past event: any watch resuming from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.history = [];
    this.compactedRevision = this.revision;
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch that allows them. */
  bookmark(): void {
    for (const watch of this.watches) {
      if (!watch.bookmarks) continue;
      const apiVersion = apiVersionOf(watch.resource, watch.version);
      this.send(watch, { type: 'BOOKMARK', object: { apiVersion, kind: watch.resource.kind, metadata: { resourceVersion: String(this.revision) } } });
    }
  }

  /** Writes a raw line to every open watch stream (garbage, to test a client's parser). */
  injectWatchLine(text: string): void {
    for (const watch of this.watches) watch.res.write(`${text}\n`);
  }

  /** Stops answering (connections refused) until `resume`. */
  async suspend(): Promise<void> {
    this.dropWatches();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async resume(): Promise<void> {
    await this.listen(this.port);
  }

  /** How many watch streams are open now (tests wait for a watch before breaking it). */
  get openWatches(): number {
    return this.watches.size;
  }

  /** The watch streams open now, each as `plural namespace fieldSelector` (tests check which were closed). */
  openWatchesOf(plural: string): string[] {
    return [...this.watches]
      .filter((w) => w.resource.plural === plural)
      .map((w) => `${plural} ${w.namespace ?? '*'} ${w.fieldSelector ?? ''}`.trim())
      .sort();
  }

  get resourceVersion(): string {
    return String(this.revision);
  }

  /** Creates an object of a served kind; its apiVersion picks the kind's group. */
  create(object: FakeObject): FakeObject {
    const { type, id } = this.typeOf(object);
    const store = this.stores.get(id)!;
    const key = this.key(type, object);
    if (store.has(key)) throw new Error(`${type.kind} ${key} already exists`);
    const stored = this.stamp(type, object, { uid: `uid-${++this.uids}`, generation: 1, creationTimestamp: new Date(0).toISOString() });
    store.set(key, stored);
    this.record('ADDED', id, stored);
    return stored;
  }

  /** Replaces an object (creates it if missing). */
  update(object: FakeObject): FakeObject {
    const { type, id } = this.typeOf(object);
    const store = this.stores.get(id)!;
    const key = this.key(type, object);
    const old = store.get(key);
    if (!old) return this.create(object);
    const generation = (typeof old.metadata['generation'] === 'number' ? old.metadata['generation'] : 1) + 1;
    const stored = this.stamp(type, object, { uid: old.metadata.uid, generation, creationTimestamp: old.metadata['creationTimestamp'] });
    store.set(key, stored);
    this.record('MODIFIED', id, stored);
    return stored;
  }

  delete(apiVersion: string, kind: string, name: string, namespace?: string): void {
    const { type, id } = this.typeOf({ apiVersion, kind, metadata: { name, namespace } });
    const store = this.stores.get(id)!;
    const key = type.namespaced ? `${namespace ?? 'default'}/${name}` : name;
    const old = store.get(key);
    if (!old) throw new Error(`${kind} ${key} not found`);
    store.delete(key);
    const revision = ++this.revision;
    const gone = { ...old, metadata: { ...old.metadata, resourceVersion: String(revision) } };
    this.record('DELETED', id, gone, revision);
  }

  get(apiVersion: string, kind: string, name: string, namespace?: string): FakeObject | undefined {
    const { type, id } = this.typeOf({ apiVersion, kind, metadata: { name, namespace } });
    return this.stores.get(id)!.get(type.namespaced ? `${namespace ?? 'default'}/${name}` : name);
  }

  async close(): Promise<void> {
    this.stalled.clear();
    this.dropWatches();
    for (const socket of this.sockets) socket.destroy();
    if (this.server.listening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async listen(port: number): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  private typeOf(object: FakeObject): { type: FakeResourceType; id: string } {
    const apiVersion = object.apiVersion ?? 'v1';
    const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
    for (const [id, type] of this.types) {
      if (type.group === group && type.kind === object.kind) return { type, id };
    }
    throw new Error(`the fake API does not serve ${apiVersion} ${object.kind}`);
  }

  private key(type: FakeResourceType, object: FakeObject): string {
    return type.namespaced ? `${object.metadata.namespace ?? 'default'}/${object.metadata.name}` : object.metadata.name;
  }

  private stamp(type: FakeResourceType, object: FakeObject, fields: Record<string, unknown>): FakeObject {
    const copy = JSON.parse(JSON.stringify(object)) as FakeObject;
    copy.metadata = {
      ...copy.metadata,
      ...(type.namespaced ? { namespace: copy.metadata.namespace ?? 'default' } : {}),
      ...fields,
      resourceVersion: String(++this.revision),
    };
    return copy;
  }

  private record(type: StoredEvent['type'], resource: string, object: FakeObject, revision = Number(object.metadata.resourceVersion)): void {
    this.history.push({ revision, type, resource, object });
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRevision = dropped[dropped.length - 1]!.revision;
    }
    for (const watch of this.watches) {
      if (resourceId(watch.resource.group, watch.resource.plural) === resource) this.deliver(watch, type, object);
    }
  }

  private deliver(watch: OpenWatch, type: StoredEvent['type'], object: FakeObject): void {
    if (watch.namespace !== undefined && object.metadata.namespace !== watch.namespace) return;
    if (!watch.filter(object)) return;
    this.send(watch, { type, object: present(object, watch.resource, watch.version, watch.metadataOnly) });
  }

  private send(watch: OpenWatch, event: unknown): void {
    const line = `${JSON.stringify(event)}\n`;
    if (this.held) this.held.set(watch, (this.held.get(watch) ?? '') + line);
    else watch.res.write(line);
  }

  /**
   * Runs `changes` and sends the events they cause in one write per watch, as a busy API server
   * does: the client reads them together.
   */
  batch(changes: () => void): void {
    const held = new Map<OpenWatch, string>();
    this.held = held;
    try {
      changes();
    } finally {
      this.held = undefined;
      for (const [watch, text] of held) if (this.watches.has(watch)) watch.res.write(text);
    }
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const accept = req.headers.accept ?? '';
    this.requests.push({ method: req.method ?? 'GET', url: `${url.pathname}${url.search}`, accept });
    if (this.unavailable) return fail(res, 503, 'ServiceUnavailable', 'the fake API server is unavailable');
    if (this.token !== undefined && req.headers.authorization !== `Bearer ${this.token}`) {
      return fail(res, 401, 'Unauthorized', 'Unauthorized');
    }
    if (req.method !== 'GET') return fail(res, 405, 'MethodNotAllowed', 'the fake API server only reads');
    const parts = url.pathname.split('/').filter(Boolean);
    if (parts[0] === 'api') return this.handleGroup('', parts.slice(1), url, accept, res);
    if (parts[0] === 'apis') {
      if (parts.length === 1) return json(res, this.groupList());
      return this.handleGroup(parts[1]!, parts.slice(2), url, accept, res);
    }
    fail(res, 404, 'NotFound', `the server could not find the requested resource`);
  }

  private handleGroup(group: string, rest: string[], url: URL, accept: string, res: ServerResponse): void {
    const types = [...this.types.values()].filter((t) => t.group === group);
    if (types.length === 0) return fail(res, 404, 'NotFound', 'the server could not find the requested resource');
    if (rest.length === 0) {
      if (group === '') return json(res, { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [] });
      return json(res, this.group(group));
    }
    const version = rest[0]!;
    const inVersion = types.filter((t) => t.versions.includes(version));
    if (inVersion.length === 0) return fail(res, 404, 'NotFound', 'the server could not find the requested resource');
    if (rest.length === 1) {
      return json(res, {
        kind: 'APIResourceList',
        apiVersion: 'v1',
        groupVersion: group === '' ? version : `${group}/${version}`,
        resources: inVersion.map((t) => ({
          name: t.plural,
          singularName: t.kind.toLowerCase(),
          namespaced: t.namespaced,
          kind: t.kind,
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
        })),
      });
    }
    let namespace: string | undefined;
    let plural: string | undefined;
    if (rest[1] === 'namespaces' && rest.length === 4) {
      namespace = rest[2];
      plural = rest[3];
    } else if (rest.length === 2) {
      plural = rest[1];
    }
    const type = inVersion.find((t) => t.plural === plural);
    if (!type || (namespace !== undefined && !type.namespaced)) {
      return fail(res, 404, 'NotFound', 'the server could not find the requested resource');
    }
    const named = url.searchParams.get('fieldSelector')?.match(/^metadata\.name=([^,]+)$/)?.[1];
    if (
      this.forbidden.has(type.plural) ||
      this.forbidden.has(resourceId(type.group, type.plural)) ||
      (named !== undefined && this.forbidden.has(`${type.plural}/${named}`))
    ) {
      const where = namespace === undefined ? 'at the cluster scope' : `in the namespace "${namespace}"`;
      return fail(
        res,
        403,
        'Forbidden',
        `${type.plural}${type.group ? `.${type.group}` : ''} is forbidden: User "system:serviceaccount:test:mesh" cannot list resource "${type.plural}" in API group "${type.group}" ${where}`,
      );
    }
    const held = this.stalled.get(type.plural) ?? this.stalled.get(resourceId(type.group, type.plural));
    if (held) {
      held.push(() => this.handleGroup(group, rest, url, accept, res));
      return;
    }
    const metadataOnly = accept.includes('as=PartialObjectMetadata');
    const filter = selectorFilter(url.searchParams.get('labelSelector'), url.searchParams.get('fieldSelector'));
    const watch = url.searchParams.get('watch');
    if (watch === '1' || watch === 'true') return this.watch(type, version, namespace, filter, metadataOnly, url, res);
    this.list(type, version, namespace, filter, metadataOnly, url, res);
  }

  private list(
    type: FakeResourceType,
    version: string,
    namespace: string | undefined,
    filter: (o: FakeObject) => boolean,
    metadataOnly: boolean,
    url: URL,
    res: ServerResponse,
  ): void {
    const limit = Number(url.searchParams.get('limit') ?? '0');
    const token = url.searchParams.get('continue');
    let items: FakeObject[];
    let offset = 0;
    let revision: string;
    if (token) {
      const decoded = JSON.parse(Buffer.from(token, 'base64url').toString()) as { id: string; offset: number; revision: string };
      const snapshot = this.snapshots.get(decoded.id);
      if (!snapshot) return fail(res, 410, 'Expired', 'The provided continue parameter is too old');
      items = snapshot;
      offset = decoded.offset;
      revision = decoded.revision;
    } else {
      items = [...this.stores.get(resourceId(type.group, type.plural))!.values()]
        .filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && filter(o))
        .sort((a, b) => this.key(type, a).localeCompare(this.key(type, b)));
      revision = String(this.revision);
    }
    const page = limit > 0 ? items.slice(offset, offset + limit) : items.slice(offset);
    const next = offset + page.length;
    let continueToken: string | undefined;
    if (next < items.length) {
      const id = `${revision}-${this.snapshots.size}`;
      this.snapshots.set(id, items);
      continueToken = Buffer.from(JSON.stringify({ id, offset: next, revision })).toString('base64url');
    }
    const apiVersion = apiVersionOf(type, version);
    json(res, {
      apiVersion: metadataOnly ? 'meta.k8s.io/v1' : apiVersion,
      kind: metadataOnly ? 'PartialObjectMetadataList' : `${type.kind}List`,
      metadata: { resourceVersion: revision, ...(continueToken ? { continue: continueToken } : {}) },
      // Typed lists omit each item's apiVersion and kind, as the real server does.
      items: page.map((o) => {
        const shown = present(o, type, version, metadataOnly);
        if (metadataOnly) return shown;
        const { apiVersion: _a, kind: _k, ...rest } = shown;
        return rest;
      }),
    });
  }

  private watch(
    type: FakeResourceType,
    version: string,
    namespace: string | undefined,
    filter: (o: FakeObject) => boolean,
    metadataOnly: boolean,
    url: URL,
    res: ServerResponse,
  ): void {
    const from = url.searchParams.get('resourceVersion');
    const resource = resourceId(type.group, type.plural);
    const tooOld = from !== null && from !== '' && from !== '0' && Number(from) < this.compactedRevision;
    if (tooOld && this.goneAs === 'status') return fail(res, 410, 'Expired', `too old resource version: ${from} (${this.compactedRevision})`);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    if (tooOld) {
      res.end(`${JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', `too old resource version: ${from} (${this.compactedRevision})`) })}\n`);
      return;
    }
    const open: OpenWatch = {
      resource: type,
      version,
      namespace,
      filter,
      metadataOnly,
      bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true',
      fieldSelector: url.searchParams.get('fieldSelector'),
      res,
    };
    if (from === null || from === '' || from === '0') {
      for (const object of this.stores.get(resource)!.values()) this.deliver(open, 'ADDED', object);
    } else {
      for (const event of this.history) {
        if (event.resource === resource && event.revision > Number(from)) this.deliver(open, event.type, event.object);
      }
    }
    this.watches.add(open);
    const timeout = Number(url.searchParams.get('timeoutSeconds') ?? '0');
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    timer?.unref();
    res.on('close', () => {
      if (timer) clearTimeout(timer);
      this.watches.delete(open);
    });
  }

  private groupList(): unknown {
    const groups = [...new Set([...this.types.values()].map((t) => t.group).filter((g) => g !== ''))];
    return { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map((g) => this.group(g)) };
  }

  private group(name: string): unknown {
    const versions: string[] = [];
    for (const type of this.types.values()) {
      if (type.group !== name) continue;
      for (const version of type.versions) if (!versions.includes(version)) versions.push(version);
    }
    const entries = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
    return { kind: 'APIGroup', apiVersion: 'v1', name, versions: entries, preferredVersion: entries[0] };
  }
}

function apiVersionOf(type: FakeResourceType, version: string): string {
  return type.group === '' ? version : `${type.group}/${version}`;
}

function present(object: FakeObject, type: FakeResourceType, version: string, metadataOnly: boolean): FakeObject {
  if (metadataOnly) return { apiVersion: 'meta.k8s.io/v1', kind: 'PartialObjectMetadata', metadata: object.metadata };
  return { ...object, apiVersion: apiVersionOf(type, version), kind: type.kind };
}

function selectorFilter(labels: string | null, fields: string | null): (object: FakeObject) => boolean {
  const labelTerms = parseTerms(labels);
  const fieldTerms = parseTerms(fields);
  return (object) => {
    for (const [key, value, equal] of labelTerms) {
      // `key` / `!key`: the label exists / does not.
      const matches = value === undefined ? object.metadata.labels?.[key] !== undefined : object.metadata.labels?.[key] === value;
      if (matches !== equal) return false;
    }
    for (const [key, value, equal] of fieldTerms) {
      if ((String(fieldValue(object, key)) === value) !== equal) return false;
    }
    return true;
  };
}

/** `a=b,c!=d,e,!f` (equality and existence selectors, which is all the mesh sends). */
function parseTerms(selector: string | null): [string, string | undefined, boolean][] {
  if (!selector) return [];
  return selector.split(',').map((term) => {
    const t = term.trim();
    if (!t.includes('=')) return t.startsWith('!') ? [t.slice(1), undefined, false] : [t, undefined, true];
    const negated = t.includes('!=');
    const [key, value] = t.split(negated ? '!=' : t.includes('==') ? '==' : '=');
    return [key!.trim(), (value ?? '').trim(), !negated];
  });
}

function fieldValue(object: FakeObject, path: string): unknown {
  let value: unknown = object;
  for (const part of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value;
}

function status(code: number, reason: string, message: string): unknown {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function fail(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(status(code, reason, message)));
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
