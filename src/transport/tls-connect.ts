import type { Socket } from 'node:net';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { buildConnector } from 'undici';
import { TlsCredentialUnavailableError, UpstreamTlsError } from '../security/errors.js';
import { subjectAltNameCheck } from '../security/subject-alt-names.js';
import type { TlsOrigination } from '../security/tls-settings.js';

/** What every connection of a pool gets besides TLS. */
export interface ConnectBase {
  /** `tcp.connectTimeout`: the TCP connect and the TLS handshake together. */
  readonly timeoutMs: number;
  /** Offer `h2` by ALPN (the port speaks HTTP/2). */
  readonly allowH2: boolean;
  /** SO_KEEPALIVE idle delay before the first probe; undefined: undici's default (60 s). */
  readonly keepAliveInitialDelayMs?: number | undefined;
}

/** Errors of the TCP connect itself: not the TLS handshake's, passed on as they are. */
const TCP_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

/** Node's TLS options for `tls`: CA, CRL, client certificate and how the server is verified. */
export function tlsConnectOptions(tls: TlsOrigination): ConnectionOptions {
  const options: ConnectionOptions = {};
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.crl !== undefined) options.crl = tls.crl;
  if (tls.cert !== undefined && tls.key !== undefined) {
    options.cert = tls.cert;
    options.key = tls.key;
  }
  if (tls.insecureSkipVerify) options.rejectUnauthorized = false;
  else if (tls.subjectAltNames !== undefined) options.checkServerIdentity = subjectAltNameCheck(tls.subjectAltNames, tls.source);
  return options;
}

/**
 * An undici connector that originates `tls` on every `https:` connection (an `http:` origin, which
 * only a pass-through agent has, connects in plaintext): the rule's `sni` replaces the
 * request's server name, and a failed handshake becomes an {@link UpstreamTlsError} (a connect
 * failure, the cause kept). `onSocket` sees each new connection (TCP keep-alive probes).
 * Built once per pool; nothing here runs per request.
 */
export function tlsConnector(tls: TlsOrigination, base: ConnectBase, onSocket?: (socket: Socket | TLSSocket) => void): buildConnector.connector {
  // Settings whose Secret was never resolved, or whose files were refused, carry no credentials:
  // nothing may connect with them.
  const ref = tls.credential;
  if (ref?.kind === 'secret') {
    return (_options, callback) =>
      callback(
        new TlsCredentialUnavailableError({ resource: ref.resource, path: ref.path, secret: `${ref.namespace}/${ref.name}`, reason: 'it has not been read' }),
        null,
      );
  }
  if (ref?.kind === 'files' && ref.refused) {
    const refused = ref.refused;
    return (_options, callback) =>
      callback(
        new TlsCredentialUnavailableError({ resource: ref.resource, path: ref.path, secret: undefined, files: ref.files, reason: refused.message }),
        null,
      );
  }
  const connector = buildConnector({
    timeout: base.timeoutMs,
    allowH2: base.allowH2,
    ...(base.keepAliveInitialDelayMs !== undefined ? { keepAlive: true, keepAliveInitialDelay: base.keepAliveInitialDelayMs } : {}),
    ...tlsConnectOptions(tls),
  });
  const sni = tls.sni;
  return (options, callback) => {
    const connectOptions = sni === undefined ? options : { ...options, servername: sni };
    connector(connectOptions, (...result) => {
      const [error, socket] = result;
      if (error) {
        const code = (error as { code?: unknown }).code;
        // An agent's connector also makes the plaintext connections of http: origins.
        if (options.protocol !== 'https:' || (typeof code === 'string' && TCP_CODES.has(code))) callback(error, null);
        else {
          const endpoint = `${options.hostname.includes(':') ? `[${options.hostname}]` : options.hostname}:${options.port || 443}`;
          callback(new UpstreamTlsError(endpoint, connectOptions.servername || undefined, typeof code === 'string' ? code : 'handshake failed', error), null);
        }
        return;
      }
      onSocket?.(socket!);
      callback(null, socket!);
    });
  };
}
