import type { Server as HttpServer } from 'node:http';
import type { IncomingMessage, RequestListener, ServerOptions as HttpServerOptions, ServerResponse } from 'node:http';
import { createServer as createH2Server } from 'node:http2';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse, ServerOptions as Http2ServerOptions } from 'node:http2';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import { systemClock } from '../clock.js';
import { SecurityOptionError } from '../security/errors.js';
import { InboundGuard } from './inbound-guard.js';
import type { InboundPolicy } from '../security/inbound/inbound-policy.js';
import type { TlsTerminatingServer } from './secure-tls-server.js';
import { secureTlsServer } from './secure-tls-server.js';
import { nodeHttp } from '../node-http.js';

/** Envoy's `listener_filters_timeout`, which Istio keeps at its default. */
const DEFAULT_DETECTION_TIMEOUT_MS = 15_000;

export interface InboundServerOptions {
  /**
   * Time a new connection has to send its first bytes and, for TLS, to finish the handshake, in
   * ms. Past it a STRICT connection is closed and a PERMISSIVE one carries on as plaintext, as
   * Istio's inbound listener does. Default 15000 (Envoy's `listener_filters_timeout`).
   */
  readonly detectionTimeoutMs?: number;
}

export interface InboundHttp2Options extends InboundServerOptions {
  /** Serve HTTP/1.1 too (over TLS by ALPN, in plaintext by the request line). Default false, as node:http2. */
  readonly allowHTTP1?: boolean;
}

const GUARDED: unique symbol = Symbol.for('sidecarless.inboundGuard.v1') as never;

type GuardedServer = (HttpServer | Http2Server | TlsTerminatingServer) & { [GUARDED]?: true };

/**
 * Puts mesh mTLS in front of a plain node:http or node:http2 server (not yet listening, or
 * listening: only connections accepted from now on are affected): each connection gets the mode
 * of its port per PeerAuthentication, TLS with the workload's certificates, verified client
 * certificates and the peer's identity on its socket (see `peerIdentity`). Returns the server.
 * A node:https or `http2.createSecureServer` server made with the mesh's TLS options gets the
 * mesh's checks and rotation instead ({@link secureTlsServer}); it speaks TLS only.
 */
export function secureServer<S extends HttpServer | Http2Server | TlsTerminatingServer>(
  server: S,
  policy: InboundPolicy,
  options: InboundHttp2Options = {},
): S {
  const target = server as GuardedServer;
  if (target[GUARDED]) throw new SecurityOptionError('this server is already secured by the mesh');
  if (server instanceof TlsServer) {
    secureTlsServer(server as TlsTerminatingServer, policy);
    Object.defineProperty(target, GUARDED, { value: true });
    return server;
  }
  const listeners = server.listeners('connection') as ((socket: Socket) => void)[];
  if (listeners.length !== 1) {
    throw new SecurityOptionError(
      `expected a node:http or node:http2 server with its own connection handler only, found ${listeners.length} connection listener(s)`,
    );
  }
  const serve = listeners[0] as (socket: Socket) => void;
  const http2 = !(server instanceof nodeHttp().Server);
  const detectionTimeoutMs = options.detectionTimeoutMs ?? DEFAULT_DETECTION_TIMEOUT_MS;
  if (!(detectionTimeoutMs > 0)) throw new SecurityOptionError(`detectionTimeoutMs must be a positive number of milliseconds, got ${detectionTimeoutMs}`);
  const guard = new InboundGuard(server, serve, policy, {
    detectionTimeoutMs,
    http2,
    allowHTTP1: http2 && options.allowHTTP1 === true,
    clock: policy.clock ?? systemClock,
  });
  server.removeListener('connection', serve);
  server.on('connection', guard.accept);
  Object.defineProperty(target, GUARDED, { value: true });
  // Connections still being classified hold no request: close() must not wait for them.
  const closable = server as { close: (callback?: (error?: Error) => void) => unknown };
  const close = closable.close;
  closable.close = function (this: unknown, callback?: (error?: Error) => void) {
    guard.destroyPending();
    return close.call(this, callback);
  };
  return server;
}

/** A node:http server (for Express apps, Fastify's `serverFactory`, plain handlers) behind {@link secureServer}. */
export function createInboundServer(
  policy: InboundPolicy,
  handler?: RequestListener<typeof IncomingMessage, typeof ServerResponse>,
  options: InboundServerOptions & { readonly http?: HttpServerOptions } = {},
): HttpServer {
  const server = nodeHttp().createServer(options.http ?? {}, handler);
  return secureServer(server, policy, options);
}

/** A node:http2 server (HTTP/2 over mesh TLS, h2c in plaintext) behind {@link secureServer}. */
export function createInboundHttp2Server(
  policy: InboundPolicy,
  handler?: (request: Http2ServerRequest, response: Http2ServerResponse) => void,
  options: InboundHttp2Options & { readonly http2?: Http2ServerOptions } = {},
): Http2Server {
  const server = createH2Server({ ...options.http2, ...(options.allowHTTP1 ? { allowHTTP1: true } : {}) } as Http2ServerOptions, handler);
  return secureServer(server, policy, options);
}
