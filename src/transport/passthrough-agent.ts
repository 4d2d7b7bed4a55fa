import { Agent } from 'undici';
import type { Upstream } from '../request-protocol.js';
import { URL_TLS } from '../security/tls-settings.js';
import { tlsConnector } from './tls-connect.js';

/** An agent that can be closed: the one of destinations without endpoints of their own. */
export interface ClosableUpstream extends Upstream {
  destroy(error: Error): Promise<void>;
}

/**
 * The agent of requests sent as named (hosts no configuration covers, destinations without
 * endpoints): undici's defaults (h2 offered by ALPN, 10 s connect timeout), and a failed handshake
 * of an https:// URL becomes an UpstreamTlsError, as with the mesh's own pools.
 */
export function passthroughAgent(): ClosableUpstream {
  return new Agent({ connect: tlsConnector(URL_TLS, { timeoutMs: 10_000, allowH2: true }) });
}
