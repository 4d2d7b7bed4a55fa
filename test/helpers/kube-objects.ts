import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type {
  KubeEndpointSlice,
  KubeNode,
  KubePodMetadata,
  KubeService,
  KubeServicePort,
  KubeSliceEndpoint,
  KubeSlicePort,
} from '../../src/kubernetes/types.js';
import type { MemoryKubeWatcher, MemoryCollection } from './memory-kube.js';

/** A Service with the ports given (`selector` set unless `manual`). */
export function service(namespace: string, name: string, ports: KubeServicePort[], manual = false): KubeService {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { ports, ...(manual ? {} : { selector: { app: name } }) },
  };
}

/** An endpoint for a pod: ready unless conditions say otherwise; the pod's name is its targetRef. */
export function endpoint(address: string, pod: string, extra: Partial<KubeSliceEndpoint> = {}): KubeSliceEndpoint {
  return { addresses: [address], conditions: { ready: true, serving: true, terminating: false }, targetRef: { kind: 'Pod', name: pod }, ...extra };
}

export const TERMINATING = { ready: false, serving: true, terminating: true } as const;
export const NOT_READY = { ready: false, serving: false, terminating: false } as const;

export function slice(
  namespace: string,
  name: string,
  serviceName: string,
  ports: KubeSlicePort[],
  endpoints: KubeSliceEndpoint[],
  addressType: 'IPv4' | 'IPv6' = 'IPv4',
): KubeEndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name, namespace, labels: { 'kubernetes.io/service-name': serviceName } },
    addressType,
    ports,
    endpoints,
  };
}

export function pod(namespace: string, name: string, labels: Record<string, string>): KubePodMetadata {
  return { apiVersion: 'meta.k8s.io/v1', kind: 'PartialObjectMetadata', metadata: { name, namespace, labels } };
}

export function node(name: string, region: string, zone: string): KubeNode {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'topology.kubernetes.io/region': region, 'topology.kubernetes.io/zone': zone } } };
}

/**
 * The collections endpoint discovery opens for a namespace, by name. A namespace the mesh has not
 * opened yet gets new, unlisted collections: `sync()` them (as the API's first list would), or the
 * mesh's first request there waits for the warm-up bound.
 */
export function namespaceCollections(
  watcher: MemoryKubeWatcher,
  namespace: string,
): {
  slices: MemoryCollection<KubeEndpointSlice>;
  services: MemoryCollection<KubeService>;
  pods: MemoryCollection<KubePodMetadata>;
  nodes: MemoryCollection<KubeNode>;
} {
  return {
    slices: watcher.get<KubeEndpointSlice>('endpointslices', namespace),
    services: watcher.get<KubeService>('services', namespace),
    pods: watcher.get<KubePodMetadata>('pods', namespace),
    nodes: watcher.get<KubeNode>('nodes'),
  };
}

/** How long a terminating pod waits for its clients to close their connections (Kubernetes: 30 s). */
const GRACE_PERIOD_MS = 10_000;

/**
 * One pod with its own server and port, shut down as a terminating pod behind a mesh is (see
 * {@link GracefulPod.stop}). Answers its name in `x-pod`; `hold` keeps responses open until
 * released.
 */
export class GracefulPod {
  port = 0;
  /** Requests being answered now. */
  inFlight = 0;
  received = 0;
  /** The `x-seq` header of each request received that carried one, in arrival order. */
  readonly sequences: number[] = [];
  hold = false;
  private terminating = false;
  private stopped: Promise<void> | undefined;
  private readonly sockets = new Set<Socket>();
  private onSocketClosed: (() => void) | undefined;
  private held: (() => void)[] = [];
  private arrivals: (() => void)[] = [];
  private constructor(
    readonly name: string,
    readonly address: string,
    private readonly server: Server,
  ) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.onSocketClosed?.();
      });
    });
  }

  static async start(name: string, address: string): Promise<GracefulPod> {
    const holder: { pod?: GracefulPod } = {};
    const server = createServer((req, res) => holder.pod?.answer(req, res));
    // Longer than the grace period: connections to an endpoint that left close because the mesh
    // closes them, never because the client's idle timer (the server's hint) runs out first.
    server.keepAliveTimeout = 60_000;
    const pod = new GracefulPod(name, address, server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, address, () => resolve());
    });
    pod.port = (server.address() as AddressInfo).port;
    holder.pod = pod;
    return pod;
  }

  /** Resolves when the next request arrives. */
  nextArrival(): Promise<void> {
    return new Promise((resolve) => this.arrivals.push(resolve));
  }

  release(): void {
    const held = this.held;
    this.held = [];
    for (const r of held) r();
  }

  /**
   * Terminates as a pod whose endpoint has left the mesh: it answers what it holds, each answer
   * from now on with `connection: close`, waits until its clients have closed every connection
   * (a mesh closes the connection pool of an endpoint that left once what it carries is done),
   * then stops listening. It never closes a keep-alive connection itself: a request the client
   * wrote just before would meet a reset (the keep-alive race, which a real pod's preStop delay
   * avoids and the mesh's default retry policy does not retry). A client that keeps one open for
   * the whole grace period gets it cut, and stop() rejects saying so. Idempotent.
   */
  stop(): Promise<void> {
    this.stopped ??= this.terminate();
    return this.stopped;
  }

  private async terminate(): Promise<void> {
    this.terminating = true;
    this.hold = false;
    this.release();
    const drained = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), GRACE_PERIOD_MS);
      this.onSocketClosed = () => {
        if (this.sockets.size > 0) return;
        clearTimeout(timer);
        resolve(true);
      };
      this.onSocketClosed();
    });
    this.onSocketClosed = undefined;
    const open = this.sockets.size;
    // With no connection left this cuts nothing; after the grace period it is the kubelet's kill.
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (!drained)
      throw new Error(`pod ${this.name}: ${open} connection(s) still open ${GRACE_PERIOD_MS} ms into its termination; its clients never closed them`);
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight++;
    this.received++;
    const seq = req.headers['x-seq'];
    if (typeof seq === 'string') this.sequences.push(Number(seq));
    const arrivals = this.arrivals;
    this.arrivals = [];
    for (const a of arrivals) a();
    req.resume();
    req.on('end', () => {
      const send = (): void => {
        res.setHeader('x-pod', this.name);
        // A terminating server tells clients to stop reusing the connection.
        if (this.terminating) res.setHeader('connection', 'close');
        res.end(this.name, () => this.inFlight--);
      };
      if (this.hold) this.held.push(send);
      else send();
    });
  }
}
