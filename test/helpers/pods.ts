import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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
          const server = createServer((req, res) => this.answer(req, res, address));
          server.keepAliveTimeout = 10_000;
          await new Promise<void>((resolve, reject) => {
            server.once('error', reject);
            server.listen(this.port || port, address, () => resolve());
          });
          if (!this.port) this.port = (server.address() as AddressInfo).port;
          this.servers.push(server);
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
    await Promise.all(
      servers.map((s) => new Promise<void>((resolve) => {
        s.closeAllConnections();
        s.close(() => resolve());
      })),
    );
  }
}
