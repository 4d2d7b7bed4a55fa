import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import { AdminOptionError } from './admin-option-error.js';
import { nodeHttp } from '../node-http.js';

/** Options of `mesh.serveAdmin()`. */
export interface AdminServerOptions {
  /** Port to listen on; 0 picks a free one. Default 15000, Envoy's admin port. */
  readonly port?: number;
  /** Address to bind. Default `127.0.0.1`: the admin views are for this machine only. */
  readonly host?: string;
  /**
   * Allow a non-loopback `host`. The admin server has no authentication and shows the mesh's
   * configuration, endpoints and errors to anyone who can reach it. Default false.
   */
  readonly allowRemote?: boolean;
}

/** A running admin server; the mesh closes it with itself. */
export interface AdminServer {
  /** `http://host:port`, for `sidecarless inspect --url`. */
  readonly url: string;
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

// In a module of its own, so that the error class is exported without loading node:http.
export { AdminOptionError };

/** Loopback by address (127.0.0.0/8, ::1, IPv4-mapped loopback) or the name `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Starts a node:http server for `handler` on loopback (unless allowed otherwise). */
export async function startAdminServer(handler: (req: IncomingMessage, res: ServerResponse) => void, options: AdminServerOptions): Promise<AdminServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 15000;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AdminOptionError(`serveAdmin: port must be an integer in 0..65535, got ${String(port)}`);
  }
  if (!isLoopbackHost(host) && options.allowRemote !== true) {
    throw new AdminOptionError(
      `serveAdmin: host "${host}" is not a loopback address. The admin server has no authentication and shows ` +
        `the mesh's configuration, endpoints and errors to whoever reaches it, so it binds to loopback only; ` +
        `pass allowRemote: true to serve it on "${host}" anyway (behind a firewall or an authenticating proxy).`,
    );
  }
  const server = nodeHttp().createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The admin server must never keep the process alive on its own.
  server.unref();
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    port: address.port,
    host: address.address,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
