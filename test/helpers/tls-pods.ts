import { createServer as createHttpServer } from 'node:http';
import type { Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IssuedCert } from './certs.js';

/** What a TLS pod answers (JSON): who it is and what the TLS session told it. */
export interface TlsPodReply {
  readonly pod: string;
  /** The SNI the client sent; null when it sent none. */
  readonly sni: string | null;
  /** The client certificate's subject CN, when one was presented. */
  readonly client: string | null;
  readonly path: string;
  readonly host: string;
  readonly body: string;
  /** The `x-envoy-upstream-rq-timeout-ms` header the pod received; null without one. */
  readonly rqTimeoutHeader: string | null;
}

export interface TlsPodOptions {
  readonly cert: IssuedCert;
  /** Require a client certificate signed by this CA (PEM). */
  readonly clientCa?: string;
  /** Listen on this port (several pods on one port, as a ServiceEntry's endpoints). */
  readonly port?: number;
}

/** A real node:https server on one loopback address: a "pod" that speaks only TLS. */
export class TlsPod {
  /** Requests answered, in order. */
  readonly replies: TlsPodReply[] = [];
  /** TLS sessions established (handshakes that succeeded). */
  handshakes = 0;
  /** Handshakes that failed on the server's side (client certificate missing or refused, ...). */
  failedHandshakes = 0;
  private readonly sockets = new Set<Socket>();
  private waiters: { readonly count: number; readonly resolve: () => void }[] = [];

  private constructor(
    readonly address: string,
    private readonly server: HttpsServer,
  ) {}

  /** Resolves once `count` requests have been answered (for fire-and-forget copies). */
  until(count: number): Promise<void> {
    if (this.replies.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  static async start(address: string, options: TlsPodOptions): Promise<TlsPod> {
    const server = createHttpsServer({
      cert: options.cert.cert,
      key: options.cert.key,
      ...(options.clientCa ? { ca: options.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
    });
    const pod = new TlsPod(address, server);
    server.keepAliveTimeout = 10_000;
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const socket = req.socket as TLSSocket;
        const peer = socket.getPeerCertificate();
        const servername = (socket as TLSSocket & { servername?: string | false }).servername;
        const reply: TlsPodReply = {
          pod: address,
          sni: typeof servername === 'string' ? servername : null,
          client: peer && typeof peer.subject?.CN === 'string' ? peer.subject.CN : null,
          path: req.url ?? '',
          host: req.headers.host ?? '',
          body: Buffer.concat(chunks).toString(),
          rqTimeoutHeader: typeof req.headers['x-envoy-upstream-rq-timeout-ms'] === 'string' ? req.headers['x-envoy-upstream-rq-timeout-ms'] : null,
        };
        pod.replies.push(reply);
        pod.waiters = pod.waiters.filter((w) => (w.count <= pod.replies.length ? (w.resolve(), false) : true));
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(reply));
      });
    });
    server.on('secureConnection', () => pod.handshakes++);
    server.on('tlsClientError', () => pod.failedHandshakes++);
    server.on('connection', (socket: Socket) => {
      pod.sockets.add(socket);
      socket.once('close', () => pod.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, address, () => resolve());
    });
    return pod;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A plaintext-only HTTP server (node:http) standing where TLS was asked for: it counts the HTTP
 * requests it parsed (must stay 0) and keeps the bytes of what it could not parse, so a test can
 * tell a TLS ClientHello (first byte 0x16, a handshake record) from a request.
 */
export class PlaintextPod {
  /** HTTP requests received: any at all means a request went out in plaintext. */
  requests = 0;
  /** The first bytes of every connection the HTTP parser refused. */
  readonly refused: Buffer[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly address: string,
    private readonly server: HttpServer,
  ) {}

  static async start(address: string, port = 0): Promise<PlaintextPod> {
    const server = createHttpServer();
    const pod = new PlaintextPod(address, server);
    server.on('request', (req, res) => {
      pod.requests++;
      req.resume();
      res.end('plaintext');
    });
    server.on('clientError', (error: Error & { rawPacket?: Buffer }, socket: Socket) => {
      if (error.rawPacket) pod.refused.push(Buffer.from(error.rawPacket));
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      else socket.destroy();
    });
    server.on('connection', (socket: Socket) => {
      pod.sockets.add(socket);
      socket.once('close', () => pod.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, address, () => resolve());
    });
    return pod;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** Every refused connection began with a TLS handshake record (a ClientHello). */
  get sawOnlyTls(): boolean {
    return this.refused.length > 0 && this.refused.every((b) => b[0] === 0x16);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
