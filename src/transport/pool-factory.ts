import { buildConnector, Pool } from 'undici';
import type { Upstream } from '../request-protocol.js';
import type { MeshClock } from '../clock.js';
import { systemClock } from '../clock.js';
import type { Endpoint } from '../discovery/endpoint.js';
import type { MeshTlsCredentials } from '../security/mesh-tls.js';
import type { TlsOrigination } from '../security/tls-settings.js';
import { pingTimeoutFactory } from './h2-keepalive.js';
import { meshTlsConnector } from './mesh-tls-connect.js';
import { tlsConnector } from './tls-connect.js';

// One undici Pool per endpoint, built from the options a cluster's policy compiles to: the one
// place the outbound path's connections are made (docs/architecture.md).

/** How the cluster's policy wants its endpoints spoken to; one Pool per endpoint is built from it. */
export interface PoolOptions {
  /** HTTP/2: prior knowledge (h2c) over cleartext, ALPN `h2` over TLS. Otherwise HTTP/1.1 only. */
  readonly http2: boolean;
  /** Connections to this endpoint at most (its share of `tcp.maxConnections`); null: no limit. */
  readonly connections: number | null;
  /** `tcp.connectTimeout` (Istio default 10 s). */
  readonly connectTimeoutMs: number;
  /** Idle connections close after this (`idleTimeout`); undefined: undici's 4 s or the server's hint. */
  readonly keepAliveTimeoutMs: number | undefined;
  readonly maxRequestsPerConnection: number | undefined;
  /** HTTP/2 streams per connection at most. */
  readonly maxConcurrentStreams: number | undefined;
  /** Connections are retired (drained, then closed) once this old. */
  readonly maxConnectionDurationMs: number | undefined;
  /** SO_KEEPALIVE with this idle delay before the first probe (0: the system's). */
  readonly keepAliveDelayMs: number | undefined;
  /** Keep-alive probe interval and count (undefined: the system's). */
  readonly keepAliveIntervalMs: number | undefined;
  readonly keepAliveProbes: number | undefined;
  /** HTTP/2 PING interval. */
  readonly h2PingIntervalMs: number | undefined;
  /** A connection whose PING stays unanswered this long is closed (only with an interval). */
  readonly h2PingTimeoutMs: number | undefined;
  /**
   * TLS originated on every connection (the origin is then `https:`); undefined: plaintext.
   * Pools are compared by its `id`: a DestinationRule TLS change never reuses a connection made
   * under other settings.
   */
  readonly tls: TlsOrigination | undefined;
  /**
   * Mesh mTLS with the workload's certificates (the origin is then `https:`); pools are compared
   * by its `id`, the settings and the certificate's fingerprint: a rotation or a rule change
   * never reuses a connection made under other credentials.
   */
  readonly meshTls: MeshTlsCredentials | undefined;
}

/** One endpoint's connections, as the cluster holds them: it sends requests, and is closed when replaced. */
export interface EndpointPool extends Upstream {
  /** Finishes the requests it carries, then closes its connections. */
  close(): Promise<void>;
  /** Closes its connections now, failing the requests it carries. */
  destroy(error?: Error | null): Promise<void>;
}

/** Per-cluster transport hook: builds the pool of one endpoint (`https:` origin when `options.tls`). */
export interface PoolFactory {
  (origin: string, endpoint: Endpoint, options: PoolOptions): EndpointPool;
}

// undici rejects a keep-alive timeout of 0; `idleTimeout: 0s` (never close) becomes the longest timer.
const NEVER_MS = 2 ** 31 - 1;

/** The pool factory the mesh uses; HTTP/2 PING timeouts run on `clock`. */
export const poolFactoryOn =
  (clock: MeshClock): PoolFactory =>
  (origin, _endpoint, options) => {
    const idle = options.keepAliveTimeoutMs === 0 ? NEVER_MS : options.keepAliveTimeoutMs;
    const h2Options =
      options.maxConcurrentStreams !== undefined || options.h2PingIntervalMs !== undefined
        ? {
            ...(options.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: options.maxConcurrentStreams } : {}),
            ...(options.h2PingIntervalMs !== undefined ? { pingInterval: Math.round(options.h2PingIntervalMs) } : {}),
          }
        : undefined;
    // Without an interval no PING is sent, so a timeout has nothing to wait for.
    const { h2PingIntervalMs: pingEvery, h2PingTimeoutMs: pingTimeout } = options;
    const factory = options.http2 && pingEvery !== undefined && pingTimeout !== undefined ? pingTimeoutFactory(pingEvery, pingTimeout, clock) : undefined;
    return new Pool(origin, {
      connections: options.connections,
      ...(factory ? { factory } : {}),
      pipelining: 1,
      connectTimeout: options.connectTimeoutMs,
      // A configured idle timeout also caps the server's keep-alive hint, which undici would follow.
      ...(idle !== undefined ? { keepAliveTimeout: idle, keepAliveMaxTimeout: idle } : { keepAliveTimeout: 4_000 }),
      ...(options.maxRequestsPerConnection !== undefined ? { maxRequestsPerClient: options.maxRequestsPerConnection } : {}),
      ...(options.maxConnectionDurationMs !== undefined ? { clientTtl: options.maxConnectionDurationMs } : {}),
      ...connectOption(options),
      // undici would offer h2 by ALPN to any TLS endpoint; Istio speaks HTTP/1.1 unless told otherwise.
      ...(options.http2 ? { allowH2: true, useH2c: origin.startsWith('http:'), ...(h2Options ? { h2Options } : {}) } : { allowH2: false }),
    });
  };

export const defaultPoolFactory: PoolFactory = poolFactoryOn(systemClock);

/**
 * The pool's `connect`: TLS origination and TCP keep-alive composed into one connector (the
 * HTTP/2 PING watch wraps whichever the pool ends up with); none for a plaintext pool with
 * undici's defaults.
 */
function connectOption(options: PoolOptions): { connect?: buildConnector.BuildOptions | buildConnector.connector } {
  if (options.meshTls) {
    const delayMs = options.keepAliveDelayMs === undefined ? undefined : Math.round(options.keepAliveDelayMs);
    const probes = keepAliveProbes(options);
    return {
      connect: meshTlsConnector(
        options.meshTls,
        { timeoutMs: options.connectTimeoutMs, allowH2: options.http2, keepAliveInitialDelayMs: delayMs },
        probes && ((socket) => socket.setKeepAlive(true, delayMs ?? 0, probes.intervalMs, probes.count)),
      ),
    };
  }
  const tls = options.tls;
  if (tls === undefined) return options.keepAliveDelayMs !== undefined ? { connect: keepAliveConnect(options) } : {};
  const delayMs = options.keepAliveDelayMs === undefined ? undefined : Math.round(options.keepAliveDelayMs);
  const probes = keepAliveProbes(options);
  return {
    connect: tlsConnector(
      tls,
      { timeoutMs: options.connectTimeoutMs, allowH2: options.http2, keepAliveInitialDelayMs: delayMs },
      probes && ((socket) => socket.setKeepAlive(true, delayMs ?? 0, probes.intervalMs, probes.count)),
    ),
  };
}

/** The probe interval and count to set on each socket, when the policy gives either. */
function keepAliveProbes(options: PoolOptions): { intervalMs: number | undefined; count: number | undefined } | undefined {
  if (options.keepAliveDelayMs === undefined || (options.keepAliveIntervalMs === undefined && options.keepAliveProbes === undefined)) return undefined;
  return {
    intervalMs: options.keepAliveIntervalMs === undefined ? undefined : Math.max(1_000, Math.round(options.keepAliveIntervalMs)),
    count: options.keepAliveProbes,
  };
}

/**
 * SO_KEEPALIVE for every connection of a pool. The idle delay goes through undici's connect
 * options; the probe interval and count only through `socket.setKeepAlive`'s third and fourth
 * arguments (added in 2026, Node 24.21 has them; an older Node ignores them and the system's
 * defaults apply), so a connector wraps undici's own to set them once per connection.
 */
function keepAliveConnect(options: PoolOptions): buildConnector.BuildOptions | buildConnector.connector {
  const delayMs = Math.round(options.keepAliveDelayMs ?? 0);
  const probes = keepAliveProbes(options);
  if (!probes) return { keepAlive: true, keepAliveInitialDelay: delayMs };
  const connector = buildConnector({
    timeout: options.connectTimeoutMs,
    allowH2: options.http2,
    keepAlive: true,
    keepAliveInitialDelay: delayMs,
  });
  return (connectOptions, callback) =>
    connector(connectOptions, (...result) => {
      result[1]?.setKeepAlive(true, delayMs, probes.intervalMs, probes.count);
      callback(...result);
    });
}

/** Two pools' options are the same (TLS and mesh mTLS compared by their ids): the pool can stay. */
export function samePoolOptions(a: PoolOptions, b: PoolOptions): boolean {
  for (const key of Object.keys(a) as (keyof PoolOptions)[]) {
    if (key === 'tls' ? a.tls?.id !== b.tls?.id : key === 'meshTls' ? a.meshTls?.id !== b.meshTls?.id : a[key] !== b[key]) return false;
  }
  return true;
}
