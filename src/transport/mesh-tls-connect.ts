import { connect as tlsConnect } from 'node:tls';
import type { TLSSocket } from 'node:tls';
import { errors } from 'undici';
import type { buildConnector } from 'undici';
import { UpstreamTlsError } from '../security/errors.js';
import { meshServerIdentityCheck } from '../security/mesh-server-identity.js';
import type { MeshTlsCredentials } from '../security/mesh-tls.js';
import { MESH_ALPN_HTTP1, MESH_ALPN_HTTP2 } from '../security/mesh-tls.js';
import type { ConnectBase } from './tls-connect.js';

/** Errors of the TCP connect itself: passed on as they are (not the handshake's). */
const TCP_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/** OpenSSL's verdicts on a chain that does not lead to the roots it was given. */
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

/** undici's default, for TCP keep-alive on pooled connections. */
const KEEP_ALIVE_DELAY_MS = 60_000;

/**
 * An undici connector for mesh mTLS: every connection presents the workload's certificate (the
 * bundle's prebuilt TLS context: no certificate parsing per connection), sends Istio's SNI and
 * ALPN, verifies the server against the mesh's roots and its identity
 * ({@link meshServerIdentityCheck}). A failed handshake becomes an {@link UpstreamTlsError} (a
 * connect failure); TLS sessions are resumed within the connector, that is within one pool and
 * one certificate. Built once per pool; nothing here runs per request.
 */
export function meshTlsConnector(credentials: MeshTlsCredentials, base: ConnectBase, onSocket?: (socket: TLSSocket) => void): buildConnector.connector {
  const { tls, bundle } = credentials;
  const alpn = base.allowH2 ? MESH_ALPN_HTTP2 : MESH_ALPN_HTTP1;
  const checkServerIdentity = meshServerIdentityCheck(tls);
  const keepAliveDelay = base.keepAliveInitialDelayMs ?? KEEP_ALIVE_DELAY_MS;
  let session: Buffer | undefined;
  return (options, callback) => {
    const hostname = options.hostname;
    const port = Number(options.port) || 443;
    const endpoint = `${hostname.includes(':') ? `[${hostname}]` : hostname}:${port}`;
    if (options.protocol !== 'https:') {
      // Mesh pools are https: origins; anything else would be plaintext where mTLS was asked for.
      callback(
        new UpstreamTlsError(
          endpoint,
          tls.sni,
          'plaintext refused',
          new Error(`a ${options.protocol} connection where mutual TLS was asked for (${tls.source})`),
        ),
        null,
      );
      return;
    }
    let settled = false;
    const socket = tlsConnect({
      host: hostname,
      port,
      servername: tls.sni,
      secureContext: bundle.secureContext,
      ALPNProtocols: alpn as string[],
      checkServerIdentity,
      ...(session ? { session } : {}),
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    });
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveDelay);
    const timer = setTimeout(() => {
      socket.destroy(new errors.ConnectTimeoutError(`Connect Timeout Error (attempted address: ${endpoint}, timeout: ${base.timeoutMs}ms)`));
    }, base.timeoutMs);
    socket.on('session', (value: Buffer) => {
      session = value;
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      onSocket?.(socket);
      callback(null, socket);
    });
    socket.on('error', (error: Error & { code?: unknown }) => {
      clearTimeout(timer);
      if (settled) return;
      settled = true;
      const code = typeof error.code === 'string' ? error.code : undefined;
      if (code !== undefined && TCP_CODES.has(code)) {
        callback(error, null);
        return;
      }
      // A resumed session the server no longer accepts is not worth keeping.
      session = undefined;
      const cause =
        code !== undefined && UNTRUSTED_CODES.has(code)
          ? new Error(`${error.message}: the server certificate does not chain to the mesh's root certificates (${bundle.files.roots}) (${tls.source})`, {
              cause: error,
            })
          : error;
      callback(new UpstreamTlsError(endpoint, tls.sni, code ?? 'handshake failed', cause), null);
    });
  };
}
