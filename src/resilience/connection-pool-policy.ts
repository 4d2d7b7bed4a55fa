import { parseDuration } from '../duration.js';

/** istiod's default for every circuit-breaker threshold it sets: effectively unlimited. */
export const ISTIO_UNLIMITED = 2 ** 32 - 1;
/** Istio's mesh-wide `connectTimeout` default, which Envoy clusters get unless overridden. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Envoy's retry budget defaults (istiod applies the same when `retryBudget` is present). */
export const DEFAULT_RETRY_BUDGET_PERCENT = 20;
export const DEFAULT_MIN_RETRY_CONCURRENCY = 3;

/** Envoy's retry budget (`circuit_breakers.thresholds.retry_budget`). */
export interface RetryBudgetPolicy {
  /** Active retries may be this percentage of the requests counted (active and pending). */
  readonly percent: number;
  /** Retries always allowed at once, however few requests there are. */
  readonly minConcurrency: number;
  /** `budgetInterval`: 0 counts requests in flight; above 0, requests started in this window. */
  readonly intervalMs: number;
}

/** The cluster-wide admission thresholds (Envoy's circuit breakers), as istiod sets them. */
export interface LimitsPolicy {
  /** `http.http1MaxPendingRequests` (Envoy `max_pending_requests`). */
  readonly maxPending: number;
  /** `http.http2MaxRequests` (Envoy `max_requests`): outstanding requests of any protocol. */
  readonly maxRequests: number;
  /** `http.maxRetries` (Envoy `max_retries`); ignored while a retry budget is set, as in Envoy. */
  readonly maxRetries: number;
  readonly budget: RetryBudgetPolicy | undefined;
}

/** How the endpoints' connections are made and kept (undici Pool options, per endpoint). */
export interface ConnectionSettings {
  /** `tcp.maxConnections`: cluster-wide, spread over the endpoints (see the cluster). */
  readonly maxConnections: number | undefined;
  /** `tcp.connectTimeout`; Istio's default is 10 s. */
  readonly connectTimeoutMs: number;
  /** `http.idleTimeout`, else `tcp.idleTimeout`; `0s` keeps idle connections open. */
  readonly idleTimeoutMs: number | undefined;
  /** `http.maxRequestsPerConnection` (undici `maxRequestsPerClient`). */
  readonly maxRequestsPerConnection: number | undefined;
  /** `http.maxConcurrentStreams` (HTTP/2 only). */
  readonly maxConcurrentStreams: number | undefined;
  /** `tcp.maxConnectionDuration`: connections are drained once this old. */
  readonly maxConnectionDurationMs: number | undefined;
  /** `tcp.tcpKeepalive`: SO_KEEPALIVE on; `time` is the idle delay before the first probe (0: the system's). */
  readonly keepAliveDelayMs: number | undefined;
  /** `tcp.tcpKeepalive.interval`: between unanswered probes; undefined: the system's. */
  readonly keepAliveIntervalMs: number | undefined;
  /** `tcp.tcpKeepalive.probes`: unanswered probes before the connection is dead; undefined: the system's. */
  readonly keepAliveProbes: number | undefined;
  /** `http.http2KeepAlive.interval`: HTTP/2 PING interval. */
  readonly h2PingIntervalMs: number | undefined;
  /** `http.http2KeepAlive.timeout`: a connection whose PING goes unanswered this long is closed (with `interval` only). */
  readonly h2PingTimeoutMs: number | undefined;
}

export const DEFAULT_CONNECTION_SETTINGS: ConnectionSettings = Object.freeze({
  maxConnections: undefined,
  connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
  idleTimeoutMs: undefined,
  maxRequestsPerConnection: undefined,
  maxConcurrentStreams: undefined,
  maxConnectionDurationMs: undefined,
  keepAliveDelayMs: undefined,
  keepAliveIntervalMs: undefined,
  keepAliveProbes: undefined,
  h2PingIntervalMs: undefined,
  h2PingTimeoutMs: undefined,
});

/** The validated `connectionPool` message. */
export interface ConnectionPoolSpec {
  readonly tcp?: {
    readonly maxConnections?: number;
    readonly connectTimeout?: string;
    readonly tcpKeepalive?: { readonly time?: string; readonly interval?: string; readonly probes?: number };
    readonly maxConnectionDuration?: string;
    readonly idleTimeout?: string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: string;
    readonly maxConcurrentStreams?: number;
    readonly http2KeepAlive?: { readonly interval?: string; readonly timeout?: string };
  };
}

/** The validated `retryBudget` message. */
export interface RetryBudgetSpec {
  readonly percent?: number | null;
  readonly minRetryConcurrency?: number;
  readonly budgetInterval?: string;
}

const positive = (n: number | undefined): number | undefined => (n !== undefined && n > 0 ? n : undefined);

function ms(text: string | undefined): number | undefined {
  return text === undefined ? undefined : parseDuration(text);
}

/**
 * The admission thresholds of a merged policy, or undefined when none is set (every request is
 * then admitted without any bookkeeping). Like istiod, a 0 means "not set", never "none allowed".
 */
export function compileLimits(pool: ConnectionPoolSpec | undefined, budget: RetryBudgetSpec | undefined): LimitsPolicy | undefined {
  const http = pool?.http;
  const maxPending = positive(http?.http1MaxPendingRequests);
  const maxRequests = positive(http?.http2MaxRequests);
  const maxRetries = positive(http?.maxRetries);
  if (maxPending === undefined && maxRequests === undefined && maxRetries === undefined && budget === undefined) return undefined;
  return {
    maxPending: maxPending ?? ISTIO_UNLIMITED,
    maxRequests: maxRequests ?? ISTIO_UNLIMITED,
    maxRetries: maxRetries ?? ISTIO_UNLIMITED,
    budget:
      budget === undefined
        ? undefined
        : {
            percent: budget.percent ?? DEFAULT_RETRY_BUDGET_PERCENT,
            minConcurrency: positive(budget.minRetryConcurrency) ?? DEFAULT_MIN_RETRY_CONCURRENCY,
            intervalMs: ms(budget.budgetInterval) ?? 0,
          },
  };
}

/** The connection settings of a merged policy; defaults when it has no `connectionPool`. */
export function compileConnectionSettings(pool: ConnectionPoolSpec | undefined): ConnectionSettings {
  if (!pool) return DEFAULT_CONNECTION_SETTINGS;
  const { tcp, http } = pool;
  const keepalive = tcp?.tcpKeepalive;
  return {
    maxConnections: positive(tcp?.maxConnections),
    connectTimeoutMs: positive(ms(tcp?.connectTimeout)) ?? DEFAULT_CONNECT_TIMEOUT_MS,
    // istiod: the HTTP idle timeout wins; the TCP one applies when the HTTP one is unset.
    idleTimeoutMs: ms(http?.idleTimeout) ?? ms(tcp?.idleTimeout),
    maxRequestsPerConnection: positive(http?.maxRequestsPerConnection),
    maxConcurrentStreams: positive(http?.maxConcurrentStreams),
    maxConnectionDurationMs: positive(ms(tcp?.maxConnectionDuration)),
    keepAliveDelayMs: keepalive ? (ms(keepalive.time) ?? 0) : undefined,
    keepAliveIntervalMs: keepalive ? positive(ms(keepalive.interval)) : undefined,
    keepAliveProbes: keepalive ? positive(keepalive.probes) : undefined,
    h2PingIntervalMs: positive(ms(http?.http2KeepAlive?.interval)),
    h2PingTimeoutMs: positive(ms(http?.http2KeepAlive?.timeout)),
  };
}
