import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';

/** What a test client saw: the response, or the error that ended the attempt. */
export type ClientResult =
  | {
      readonly ok: true;
      readonly status: number;
      readonly body: string;
      readonly serverFingerprint: string | undefined;
      readonly alpn: string | false | undefined;
    }
  | { readonly ok: false; readonly code: string; readonly message: string };

export interface ClientOptions {
  readonly host?: string;
  readonly path?: string;
  readonly method?: string;
  readonly body?: string;
  /** The client's certificate (omit for a TLS client without one). */
  readonly identity?: Pick<IssuedCertificate, 'chainPem' | 'keyPem'>;
  /** Roots the client verifies the server against. */
  readonly ca?: string;
  readonly servername?: string;
}

function collect(res: IncomingMessage, resolve: (r: ClientResult) => void): void {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d: string) => (body += d));
  res.on('end', () => {
    const socket = res.socket as TLSSocket | null;
    resolve({
      ok: true,
      status: res.statusCode ?? 0,
      body,
      serverFingerprint: typeof socket?.getPeerCertificate === 'function' ? socket.getPeerCertificate().fingerprint256 : undefined,
      alpn: socket && 'alpnProtocol' in socket ? (socket.alpnProtocol ?? undefined) : undefined,
    });
  });
  res.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? 'ERR', message: e.message }));
}

/** One request on a new connection (no agent, so no reuse): HTTPS when `tls`, else plaintext HTTP. */
export function send(port: number, tls: boolean, options: ClientOptions = {}): Promise<ClientResult> {
  return new Promise((resolve) => {
    const common = { host: options.host ?? '127.0.0.1', port, path: options.path ?? '/', method: options.method ?? 'GET', agent: false as const };
    const req = tls
      ? httpsRequest(
          {
            ...common,
            ca: options.ca,
            ...(options.identity ? { cert: options.identity.chainPem, key: options.identity.keyPem } : {}),
            ...(options.servername ? { servername: options.servername } : {}),
          },
          (res) => collect(res, resolve),
        )
      : httpRequest(common, (res) => collect(res, resolve));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, code: e.code ?? 'ERR', message: e.message }));
    req.end(options.body);
  });
}

/**
 * Sends raw bytes on a new TCP connection and collects whatever comes back until the server
 * closes: proves a refused connection got no HTTP response.
 */
export function rawExchange(port: number, bytes: string, host = '127.0.0.1'): Promise<{ readonly received: string; readonly closed: 'end' | 'reset' }> {
  return new Promise((resolve) => {
    const socket = connect({ host, port }, () => socket.write(bytes));
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    socket.on('end', () => resolve({ received, closed: 'end' }));
    socket.on('error', () => resolve({ received, closed: 'reset' }));
  });
}
