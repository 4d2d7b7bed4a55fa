import { parseDuration } from '../duration.js';

/**
 * A DestinationRule's `outlierDetection`, compiled with the values istiod would give Envoy
 * (pilot `applyOutlierDetection`) and Envoy's defaults for what istiod leaves unset.
 */
export interface OutlierPolicy {
  /** `consecutive5xxErrors`: unset is Envoy's 5; 0 turns this detection off, as istiod does. */
  readonly consecutive5xx: number;
  /** `consecutiveGatewayErrors` (502, 503, 504): unset or 0 is off (Envoy enforces it at 0%). */
  readonly consecutiveGateway: number;
  /**
   * `consecutiveLocalOriginFailures`, counted only with `splitExternalLocalOriginErrors`. istiod
   * passes it on only when above 0, so unset and 0 both mean Envoy's default of 5.
   */
  readonly consecutiveLocalOrigin: number;
  /** `splitExternalLocalOriginErrors`: local-origin failures are counted apart from responses. */
  readonly splitLocalOrigin: boolean;
  /**
   * `outlierDetectionHttpErrorCodes`: when set, only these response statuses are errors (a
   * non-5xx one counts as a 500) and every other response is a success.
   */
  readonly errorCodes: ReadonlySet<number> | undefined;
  /** `interval`: how often ejected hosts are checked for return. Envoy default 10 s. */
  readonly intervalMs: number;
  /** `baseEjectionTime`: ejection lasts this times the host's ejection count. Default 30 s. */
  readonly baseEjectionMs: number;
  /** Envoy's `max_ejection_time` (istiod leaves it unset): 300 s, or the base when larger. */
  readonly maxEjectionMs: number;
  /**
   * `maxEjectionPercent`: at most this share of the cluster's hosts is ejected at once. istiod
   * passes it on only when above 0, so unset and 0 both mean Envoy's 10%.
   */
  readonly maxEjectionPercent: number;
}

export const DEFAULT_CONSECUTIVE_5XX = 5;
export const DEFAULT_CONSECUTIVE_LOCAL_ORIGIN_FAILURES = 5;
export const DEFAULT_OUTLIER_INTERVAL_MS = 10_000;
export const DEFAULT_BASE_EJECTION_MS = 30_000;
export const DEFAULT_MAX_EJECTION_MS = 300_000;
export const DEFAULT_MAX_EJECTION_PERCENT = 10;

/** The validated `outlierDetection` message (schema types: numbers, booleans, durations). */
export interface OutlierDetectionSpec {
  readonly consecutive5xxErrors?: number | null;
  readonly consecutiveGatewayErrors?: number | null;
  readonly consecutiveLocalOriginFailures?: number | null;
  readonly splitExternalLocalOriginErrors?: boolean;
  readonly outlierDetectionHttpErrorCodes?: readonly number[];
  readonly interval?: string;
  readonly baseEjectionTime?: string;
  readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}

function durationMs(text: string | undefined, fallback: number): number {
  const ms = text === undefined ? undefined : parseDuration(text);
  return ms === undefined || ms <= 0 ? fallback : ms;
}

/** Compiles `outlierDetection`; undefined when the policy has none (no detection at all). */
export function compileOutlierPolicy(spec: OutlierDetectionSpec | undefined): OutlierPolicy | undefined {
  if (!spec) return undefined;
  const base = durationMs(spec.baseEjectionTime, DEFAULT_BASE_EJECTION_MS);
  const local = spec.consecutiveLocalOriginFailures ?? 0;
  return {
    consecutive5xx: spec.consecutive5xxErrors ?? DEFAULT_CONSECUTIVE_5XX,
    consecutiveGateway: spec.consecutiveGatewayErrors ?? 0,
    consecutiveLocalOrigin: local > 0 ? local : DEFAULT_CONSECUTIVE_LOCAL_ORIGIN_FAILURES,
    splitLocalOrigin: spec.splitExternalLocalOriginErrors === true,
    errorCodes:
      spec.outlierDetectionHttpErrorCodes && spec.outlierDetectionHttpErrorCodes.length > 0 ? new Set(spec.outlierDetectionHttpErrorCodes) : undefined,
    intervalMs: durationMs(spec.interval, DEFAULT_OUTLIER_INTERVAL_MS),
    baseEjectionMs: base,
    maxEjectionMs: Math.max(DEFAULT_MAX_EJECTION_MS, base),
    maxEjectionPercent:
      spec.maxEjectionPercent !== undefined && spec.maxEjectionPercent > 0 ? Math.min(100, spec.maxEjectionPercent) : DEFAULT_MAX_EJECTION_PERCENT,
  };
}
