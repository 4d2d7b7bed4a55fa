import { createSecureServer } from 'node:http2';
import type { Http2SecureServer, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { spiffeIdOf } from '../../src/security/spiffe-id.js';

/** What the client said in its ClientHello, in handshake order. */
export interface Hello {
  readonly servername: string | undefined;
  readonly alpn: readonly string[];
}

/** One accepted TLS connection: the certificate the client presented and what was negotiated. */
export interface MtlsConnection {
  readonly servername: string | undefined;
  readonly alpn: string | false;
  /** The client's SPIFFE ID, when it presented a certificate with one. */
  readonly client: string | undefined;
  /** Serial number of the client's leaf certificate. */
  readonly clientSerial: string | undefined;
}

/** What the pod answers (JSON). */
export interface MtlsPodReply {
  readonly pod: string;
  readonly httpVersion: string;
  /** Index of the connection (in {@link MeshTlsPod.connections}) the request came on. */
  readonly connection: number;
  readonly client: string | undefined;
  readonly path: string;
}

export interface MeshTlsPodOptions {
  /** The pod's workload certificate. */
  readonly identity: IssuedCertificate;
  /** Roots client certificates are verified against. Default: the identity's root. */
  readonly clientRoots?: string;
  readonly port?: number;
  /** Require a client certificate (default true, as STRICT). */
  readonly requireClientCertificate?: boolean;
}

/**
 * A "pod" of the mesh as a real Istio sidecar would front it: TLS with its workload certificate,
 * client certificates required and verified, HTTP/2 (ALPN `h2`) or HTTP/1.1 (`http/1.1`), chosen
 * from what the client offers as Envoy's inbound listener does. It records every ClientHello (SNI,
 * ALPN offered) and every connection with the certificate presented, so tests assert at the
 * server what the mesh sent.
 */
export class MeshTlsPod {
  readonly hellos: Hello[] = [];
  readonly connections: MtlsConnection[] = [];
  readonly replies: MtlsPodReply[] = [];
  /** Handshakes the server refused (no or untrusted client certificate...). */
  failedHandshakes = 0;
  private readonly sockets = new Set<Socket>();
  private readonly index = new WeakMap<object, number>();

  private constructor(
    readonly address: string,
    private readonly server: Http2SecureServer,
  ) {}

  static async start(address: string, options: MeshTlsPodOptions): Promise<MeshTlsPod> {
    const ref: { pod?: MeshTlsPod } = {};
    const server = createSecureServer(
      {
        cert: options.identity.chainPem,
        key: options.identity.keyPem,
        ca: options.clientRoots ?? options.identity.rootPem,
        requestCert: true,
        rejectUnauthorized: options.requireClientCertificate ?? true,
        allowHTTP1: true,
        // Envoy's inbound mTLS chain: h2, else http/1.1 (the istio-* names only select the chain).
        ALPNCallback: ({ servername, protocols }) => {
          ref.pod!.hellos.push({ servername, alpn: [...protocols] });
          return protocols.includes('h2') ? 'h2' : protocols.includes('http/1.1') ? 'http/1.1' : undefined;
        },
      },
      (req, res) => ref.pod!.answer(req, res),
    );
    const pod = new MeshTlsPod(address, server);
    ref.pod = pod;
    server.on('secureConnection', (socket: TLSSocket) => {
      const peer = socket.getPeerX509Certificate();
      pod.index.set(socket, pod.connections.length);
      pod.connections.push({
        servername:
          typeof (socket as TLSSocket & { servername?: string | false }).servername === 'string'
            ? (socket as TLSSocket & { servername: string }).servername
            : undefined,
        alpn: socket.alpnProtocol ?? false,
        client: peer ? spiffeIdOf(peer)?.uri : undefined,
        clientSerial: peer?.serialNumber,
      });
    });
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

  private answer(req: Http2ServerRequest, res: Http2ServerResponse): void {
    req.resume();
    req.on('end', () => {
      const socket = (req.httpVersion === '2.0' ? req.stream.session?.socket : req.socket) as TLSSocket | undefined;
      const peer = socket?.getPeerX509Certificate();
      const reply: MtlsPodReply = {
        pod: this.address,
        httpVersion: req.httpVersion,
        connection: socket ? (this.index.get(socket) ?? -1) : -1,
        client: peer ? spiffeIdOf(peer)?.uri : undefined,
        path: req.url ?? '',
      };
      this.replies.push(reply);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(reply));
    });
  }

  /** Replaces the pod's own certificate (its sidecar rotated). */
  rotate(identity: IssuedCertificate, clientRoots: string = identity.rootPem): void {
    this.server.setSecureContext({ cert: identity.chainPem, key: identity.keyPem, ca: clientRoots });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
