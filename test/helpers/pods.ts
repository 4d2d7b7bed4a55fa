import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What every test pod answers: who it is and what it received. */
export interface PodReply {
  readonly pod: string;
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export type PodBehaviour = (req: IncomingMessage, res: ServerResponse, pod: string) => boolean | void;

/**
 * A set of real HTTP servers, one per loopback address (each one a "pod"), all on one port.
 * `behave` may take over a request (return true) to answer slowly, fail, etc.
 */
export class Pods {
  private servers: Server[] = [];
  /** The server of each address, and the sockets it has open (for `kill`). */
  private readonly byAddress = new Map<string, { server: Server; sockets: Set<Socket> }>();
  port = 0;
  behave: PodBehaviour | undefined;

  static async start(addresses: readonly string[]): Promise<Pods> {
    const pods = new Pods();
    await pods.listen(addresses);
    return pods;
  }

  private async listen(addresses: readonly string[]): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = this.port || 0;
      try {
        for (const address of addresses) {
          await this.listenOn(address, this.port || port);
          if (!this.port) this.port = (this.servers.at(-1)!.address() as AddressInfo).port;
        }
        return;
      } catch {
        // The first pod's random port was taken on another address: start over on a new one.
        await this.close();
        this.port = 0;
      }
    }
    throw new Error('could not find a free port on every pod address');
  }

  private async listenOn(address: string, port: number): Promise<void> {
    const server = createServer((req, res) => this.answer(req, res, address));
    server.keepAliveTimeout = 10_000;
    const sockets = new Set<Socket>();
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    this.servers.push(server);
    this.byAddress.set(address, { server, sockets });
  }

  /**
   * The pod at `address` dies: its server stops listening (connections to it are refused from now
   * on) and every connection it has open, requests in flight included, is destroyed. Resolves once
   * all of them are closed.
   */
  async kill(address: string): Promise<void> {
    const pod = this.byAddress.get(address);
    if (!pod) throw new Error(`no pod listens on ${address}`);
    this.byAddress.delete(address);
    this.servers = this.servers.filter((s) => s !== pod.server);
    const closed = new Promise<void>((resolve) => pod.server.close(() => resolve()));
    for (const socket of pod.sockets) socket.destroy();
    await closed;
  }

  /** Whether a pod listens on `address` (it was started and not killed). */
  running(address: string): boolean {
    return this.byAddress.has(address);
  }

  /** Brings a killed pod back on its address and the pods' port. */
  async revive(address: string): Promise<void> {
    if (this.byAddress.has(address)) throw new Error(`the pod on ${address} is running`);
    await this.listenOn(address, this.port);
  }

  private answer(req: IncomingMessage, res: ServerResponse, pod: string): void {
    if (this.behave?.(req, res, pod)) return;
    req.resume();
    req.on('end', () => {
      const body: PodReply = { pod, method: req.method ?? '', path: req.url ?? '', host: req.headers.host ?? '', headers: req.headers };
      res.setHeader('content-type', 'application/json');
      res.setHeader('x-pod', pod);
      res.end(JSON.stringify(body));
    });
  }

  async close(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    this.byAddress.clear();
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => resolve());
          }),
      ),
    );
  }
}
