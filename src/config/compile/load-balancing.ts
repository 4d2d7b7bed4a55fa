import type { BalancerOptions, ClusterBalancerSpec } from '../../balancer/index.js';
import { DEFAULT_BALANCER_POLICY } from '../../balancer/index.js';
import { parseDuration } from '../../duration.js';
import { LOAD_BALANCER_ANNOTATION } from '../../balancer/annotation.js';
import type { TrafficPolicySpec } from '../snapshot.js';
import type { Locality } from '../../discovery/endpoint.js';
import { HEDGE_AFTER_ANNOTATION, parseHedgeAfter } from '../../resilience/hedge-policy.js';

/** How a request's hash is computed for consistent hashing. */
export type HashOn =
  | { readonly kind: 'header'; readonly name: string }
  | {
      readonly kind: 'cookie';
      readonly name: string;
      readonly ttl: string | undefined;
      readonly path: string | undefined;
      readonly attributes: readonly { readonly name: string; readonly value?: string }[] | undefined;
    }
  | { readonly kind: 'source-ip' }
  | { readonly kind: 'query'; readonly name: string };

export interface CompiledLoadBalancing {
  readonly spec: ClusterBalancerSpec;
  readonly hashOn: HashOn | undefined;
  /** `PASSTHROUGH`: connect to the address the caller asked for, no balancing. */
  readonly passthrough: boolean;
  /**
   * The endpoints speak HTTP/2 (prior knowledge over cleartext, ALPN over TLS). Compiled here
   * because it comes from the same merged policy (`connectionPool.http`); see {@link upstreamHttp2}.
   */
  readonly http2: boolean;
  /** Hedging delay from the DestinationRule annotation (our addition); 0 when off. */
  readonly hedgeAfterMs: number;
}

interface LoadBalancerSettings {
  simple?: string;
  consistentHash?: {
    httpHeaderName?: string;
    httpCookie?: { name: string; ttl?: string; path?: string; attributes?: { name: string; value?: string }[] };
    useSourceIp?: boolean;
    httpQueryParameterName?: string;
    ringHash?: { minimumRingSize?: number };
    maglev?: { tableSize?: number };
    minimumRingSize?: number;
  };
  localityLbSetting?: {
    enabled?: boolean;
    distribute?: { from?: string; to?: Record<string, number> }[];
    failover?: { from?: string; to?: string }[];
    failoverPriority?: string[];
  };
  warmupDurationSecs?: string;
  warmup?: { duration?: string; minimumPercent?: number; aggression?: number };
}

export interface CallerIdentity {
  readonly locality: Locality;
  readonly labels: Readonly<Record<string, string>>;
  readonly network?: string;
}

/**
 * Whether a destination's connections speak HTTP/2, as istiod sets a cluster's protocol:
 * `connectionPool.http.useClientProtocol` keeps the caller's protocol, which for a call through
 * the dispatcher (fetch, undici.request) is HTTP/1.1, and makes `h2UpgradePolicy` ineffective;
 * otherwise a port declared `HTTP2`, `GRPC` or `GRPC-WEB`, or `h2UpgradePolicy: UPGRADE`, means
 * HTTP/2. `DO_NOT_UPGRADE` and `DEFAULT` (the mesh default, which is not to upgrade) leave other
 * ports on HTTP/1.1.
 */
export function upstreamHttp2(policy: TrafficPolicySpec | undefined, portProtocol: string | undefined): boolean {
  const http = (policy?.connectionPool as { http?: { h2UpgradePolicy?: string; useClientProtocol?: boolean } } | undefined)?.http;
  if (http?.useClientProtocol) return false;
  const protocol = portProtocol?.toUpperCase();
  return protocol === 'HTTP2' || protocol === 'GRPC' || protocol === 'GRPC-WEB' || http?.h2UpgradePolicy === 'UPGRADE';
}

/** Compiles a merged traffic policy's load balancing into a balancer spec, once per snapshot. */
export function compileLoadBalancing(
  policy: TrafficPolicySpec | undefined,
  annotations: Readonly<Record<string, string>>,
  caller: CallerIdentity,
  /** The service port's declared protocol (ServiceEntry `ports[].protocol`), when known. */
  portProtocol?: string,
): CompiledLoadBalancing {
  const lb = (policy?.loadBalancer ?? {}) as LoadBalancerSettings;
  const outlier = policy?.outlierDetection as { minHealthPercent?: number } | undefined;
  const options: { -readonly [K in keyof BalancerOptions]: BalancerOptions[K] } = {};
  let name = lb.simple && lb.simple !== 'UNSPECIFIED' ? lb.simple : DEFAULT_BALANCER_POLICY;
  let hashOn: HashOn | undefined;
  const ch = lb.consistentHash;
  if (ch) {
    name = ch.maglev ? 'MAGLEV' : 'RING_HASH';
    if (ch.maglev?.tableSize) options.tableSize = ch.maglev.tableSize;
    const ring = ch.ringHash?.minimumRingSize ?? ch.minimumRingSize;
    if (ring) options.minimumRingSize = ring;
    if (ch.httpHeaderName) hashOn = { kind: 'header', name: ch.httpHeaderName.toLowerCase() };
    else if (ch.httpCookie) {
      const { name: cookieName, ttl, path, attributes } = ch.httpCookie;
      hashOn = { kind: 'cookie', name: cookieName, ttl, path, attributes };
    } else if (ch.useSourceIp) hashOn = { kind: 'source-ip' };
    else if (ch.httpQueryParameterName) hashOn = { kind: 'query', name: ch.httpQueryParameterName };
  }
  const override = annotations[LOAD_BALANCER_ANNOTATION];
  if (override) name = override;

  const warmup = lb.warmup?.duration ?? lb.warmupDurationSecs;
  const windowMs = warmup ? parseDuration(warmup) : undefined;
  if (windowMs && (name === 'ROUND_ROBIN' || name === 'LEAST_REQUEST' || name === 'LEAST_CONN')) {
    options.slowStart = {
      windowMs,
      ...(lb.warmup?.aggression !== undefined ? { aggression: lb.warmup.aggression } : {}),
      ...(lb.warmup?.minimumPercent !== undefined ? { minWeightPercent: lb.warmup.minimumPercent } : {}),
    };
  }
  const locality = lb.localityLbSetting;
  const passthrough = name === 'PASSTHROUGH';
  const spec: ClusterBalancerSpec = {
    // PASSTHROUGH connects to the address asked for and never picks: the balancer is idle.
    policy: passthrough ? DEFAULT_BALANCER_POLICY : name,
    options,
    locality: {
      enabled: locality?.enabled ?? true,
      failoverEnabled: outlier !== undefined,
      ...(locality?.distribute ? { distribute: locality.distribute.map((d) => ({ from: d.from ?? '', to: d.to ?? {} })) } : {}),
      ...(locality?.failover ? { failover: locality.failover.map((f) => ({ from: f.from ?? '', to: f.to ?? '' })) } : {}),
      ...(locality?.failoverPriority ? { failoverPriority: locality.failoverPriority } : {}),
      clientLocality: caller.locality,
      clientLabels: caller.labels,
      ...(caller.network ? { clientNetwork: caller.network } : {}),
    },
    // Istio: with outlierDetection, panic threshold = minHealthPercent (default 0: off);
    // without it, Envoy's default 50%.
    ...(outlier !== undefined ? { panicThresholdPercent: outlier.minHealthPercent ?? 0 } : {}),
  };
  return {
    spec,
    hashOn,
    passthrough,
    http2: upstreamHttp2(policy, portProtocol),
    hedgeAfterMs: parseHedgeAfter(annotations[HEDGE_AFTER_ANNOTATION]) ?? 0,
  };
}

export { LOAD_BALANCER_ANNOTATION };
