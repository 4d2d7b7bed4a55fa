import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import type { CancelTimer, MeshClock } from '../clock.js';
import type { CertificateBundle } from '../security/certificate-bundle.js';
import type { PeerRejection } from '../security/errors.js';
import { PeerRejectedError } from '../security/errors.js';
import type { MtlsMode } from '../security/peer-authentication-policy.js';
import { attachPeerIdentity } from '../security/peer-identity.js';
import type { InboundPolicy } from '../security/inbound/inbound-policy.js';
import { nodeHttp } from '../node-http.js';
import { verifyPeer } from './verify-peer.js';

/** The first byte of a TLS record carrying a handshake (the ClientHello). */
const TLS_HANDSHAKE = 0x16;
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

type ConnectionListener = (socket: Socket) => void;

interface Pending {
  readonly socket: Socket;
  readonly port: number;
  readonly mode: MtlsMode;
  readonly remoteAddress: string | undefined;
  readonly timer: CancelTimer;
  /** Set once handed to TLS: the connection's 4-tuple, under which the TLS server's events find it. */
  key: string | undefined;
  /** The peek at the first bytes, removed once the connection is decided. */
  peek: ((chunk: Buffer) => void) | undefined;
}

export interface GuardOptions {
  readonly detectionTimeoutMs: number;
  /** Runs the detection timeout (a connection's timer: it keeps the process alive, as the socket does). */
  readonly clock: MeshClock;
  /** The server speaks HTTP/2 (falls back to HTTP/1.1 when `allowHTTP1`). */
  readonly http2: boolean;
  readonly allowHTTP1: boolean;
}

/**
 * Stands in front of a node:http or node:http2 server's connection handling. Each accepted
 * connection gets its port's PeerAuthentication mode: DISABLE hands it over untouched; otherwise
 * the first bytes decide (a TLS ClientHello starts with 0x16): TLS is terminated with the
 * workload's certificates, the client certificate required and verified (chain to the roots,
 * validity, a SPIFFE ID of an accepted trust domain) and the identity attached to the socket before
 * the HTTP server sees it; plaintext is handed over under PERMISSIVE and closed under STRICT. A
 * refused connection is closed without a byte read by the application.
 */
export class InboundGuard {
  private readonly pending = new Map<string, Pending>();
  private readonly waiting = new Set<Pending>();
  private tls: TlsServer | undefined;
  private contextOf: CertificateBundle | undefined;
  /** HTTP/1.1 on an HTTP/2 server (`allowHTTP1`): parsed here, requests emitted on the HTTP/2 server as node:http2 does. */
  private http1: HttpServer | undefined;

  constructor(
    private readonly server: HttpServer | Http2Server,
    private readonly serve: ConnectionListener,
    private readonly policy: InboundPolicy,
    private readonly options: GuardOptions,
  ) {}

  readonly accept = (socket: Socket): void => {
    const port = socket.localPort ?? 0;
    const mode = this.policy.mode(port);
    // DISABLE hands over untouched, except where HTTP/2 and HTTP/1.1 share a plaintext port: the
    // first bytes tell them apart.
    if (mode === 'DISABLE' && !(this.options.http2 && this.options.allowHTTP1)) {
      this.handOver(socket, !this.options.http2, false);
      this.policy.report?.({ result: 'plaintext', port, mode });
      return;
    }
    const state: Pending = {
      socket,
      port,
      mode,
      remoteAddress: socket.remoteAddress,
      key: undefined,
      peek: undefined,
      timer: this.options.clock.schedule(this.options.detectionTimeoutMs, () => this.timedOut(state), 'request'),
    };
    this.waiting.add(state);
    socket.on('error', ignoreError);
    socket.once('close', () => this.forget(state));
    state.peek = (chunk: Buffer) => {
      state.peek = undefined;
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE && mode !== 'DISABLE') this.terminateTls(state);
      else if (mode === 'STRICT') this.reject(state, 'plaintext', 'plaintext connection to a port that requires mutual TLS (PeerAuthentication STRICT)');
      else this.servePlaintext(state, chunk);
    };
    socket.once('data', state.peek);
  };

  /** Closes connections still being classified, and idle HTTP/1.1 ones of an HTTP/2 server (it is closing). */
  destroyPending(): void {
    for (const state of [...this.waiting]) {
      this.forget(state);
      state.socket.destroy();
    }
    this.http1?.closeIdleConnections();
  }

  private servePlaintext(state: Pending, first: Buffer | undefined): void {
    this.forget(state);
    const h2Preface = first !== undefined && H2_PREFACE.subarray(0, Math.min(first.length, H2_PREFACE.length)).equals(first.subarray(0, H2_PREFACE.length));
    // An HTTP/2-only server gets whatever came: node:http2 answers a non-HTTP/2 client with GOAWAY.
    this.handOver(state.socket, !this.options.http2 || (!h2Preface && this.options.allowHTTP1));
    this.policy.report?.({ result: 'plaintext', port: state.port, mode: state.mode });
  }

  /** `http1`: the socket will be read as HTTP/1 (a peeked plaintext one is resumed). */
  private handOver(socket: Socket, http1: boolean, resume = true): void {
    if (this.options.http2 && http1) {
      const server = this.server;
      this.http1 ??= nodeHttp().createServer((req, res) => server.emit('request', req, res));
      this.http1.emit('connection', socket);
    } else {
      this.serve.call(this.server, socket);
    }
    if (http1 && resume && !socket.destroyed) socket.resume();
  }

  private terminateTls(state: Pending): void {
    const bundle = this.policy.certificates();
    if (!bundle) {
      this.reject(
        state,
        'no-workload-certificate',
        'TLS connection, but this workload has no valid certificates to serve it with (see the certificateRejected event)',
      );
      return;
    }
    state.key = connectionKey(state.socket);
    this.pending.set(state.key, state);
    this.tlsServer(bundle).emit('connection', state.socket);
  }

  /** One never-listening TLS server per inbound server, its context replaced when the certificates rotate. */
  private tlsServer(bundle: CertificateBundle): TlsServer {
    if (this.tls && this.contextOf === bundle) return this.tls;
    const context = { cert: bundle.chainPem, key: bundle.keyPem, ca: bundle.rootsPem };
    if (this.tls) {
      this.tls.setSecureContext(context);
    } else {
      this.tls = new TlsServer({
        ...context,
        requestCert: true,
        // Verified below, so that every refusal has its precise reason and is counted.
        rejectUnauthorized: false,
        handshakeTimeout: this.options.detectionTimeoutMs,
        ALPNCallback: ({ protocols }) => this.selectAlpn(protocols),
      });
      this.tls.on('secureConnection', (socket: TLSSocket) => this.secured(socket));
      this.tls.on('tlsClientError', (error: Error, socket: TLSSocket) => {
        const state = this.pending.get(connectionKey(socket));
        if (state) this.reject(state, 'handshake', `TLS handshake failed: ${error.message.trim()}`, error, socket);
        else socket.destroy();
      });
    }
    this.contextOf = bundle;
    return this.tls;
  }

  /**
   * HTTP/2 servers prefer `h2`; `http/1.1` when served. Istio sidecars offer `istio-peer-exchange`
   * and `istio` (and only `h2` besides when they speak HTTP/2): `istio` is accepted and the
   * connection read as HTTP/1.1, which is what such a client then sends.
   */
  private selectAlpn(protocols: readonly string[]): string | undefined {
    if (this.options.http2 && protocols.includes('h2')) return 'h2';
    if ((!this.options.http2 || this.options.allowHTTP1) && protocols.includes('http/1.1')) return 'http/1.1';
    if ((!this.options.http2 || this.options.allowHTTP1) && protocols.includes('istio')) return 'istio';
    return undefined;
  }

  private secured(socket: TLSSocket): void {
    const state = this.pending.get(connectionKey(socket));
    if (!state) {
      socket.destroy();
      return;
    }
    const verdict = verifyPeer(socket, this.policy.trustDomains);
    if (!verdict.ok) {
      this.reject(state, verdict.reason, verdict.message, undefined, socket);
      return;
    }
    const http1 = !this.options.http2 || socket.alpnProtocol !== 'h2';
    if (this.options.http2 && http1 && !this.options.allowHTTP1) {
      this.reject(state, 'handshake', 'the client did not negotiate HTTP/2 (ALPN h2) and this server does not serve HTTP/1.1 (allowHTTP1)', undefined, socket);
      return;
    }
    const identity = verdict.identity;
    attachPeerIdentity(socket, identity);
    this.forget(state);
    this.handOver(socket, http1, false);
    this.policy.report?.({ result: 'mtls', port: state.port, mode: state.mode, identity });
  }

  private timedOut(state: Pending): void {
    if (!this.waiting.has(state)) return;
    if (state.key === undefined && state.mode === 'PERMISSIVE') {
      // As Istio's listener on a PERMISSIVE port: no bytes in time, carry on as plaintext.
      state.socket.pause();
      this.servePlaintext(state, undefined);
      return;
    }
    this.reject(state, 'timeout', `no ${state.key !== undefined ? 'completed TLS handshake' : 'data'} within ${this.options.detectionTimeoutMs} ms`);
  }

  private reject(state: Pending, reason: PeerRejection, message: string, cause?: unknown, tlsSocket?: TLSSocket): void {
    if (!this.waiting.has(state)) return;
    this.forget(state);
    tlsSocket?.destroy();
    state.socket.destroy();
    const error = new PeerRejectedError(reason, state.mode, state.port, state.remoteAddress, message, cause === undefined ? undefined : { cause });
    this.policy.report?.({ result: 'rejected', port: state.port, mode: state.mode, error });
  }

  private forget(state: Pending): void {
    if (!this.waiting.delete(state)) return;
    state.timer();
    state.socket.removeListener('error', ignoreError);
    if (state.peek) {
      state.socket.removeListener('data', state.peek);
      state.peek = undefined;
    }
    if (state.key !== undefined) this.pending.delete(state.key);
  }
}

function ignoreError(): void {
  // A reset during detection or handshake closes the socket; the close cleans up.
}

/** A live TCP connection's 4-tuple: the same for the raw socket and the TLS socket over it. */
function connectionKey(socket: Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}|${socket.localAddress}|${socket.localPort}`;
}
