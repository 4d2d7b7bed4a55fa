import type { Endpoint } from '../discovery/endpoint.js';

/**
 * Peak-EWMA latency state of one host (Finagle's `PeakEwma`, Linkerd's `PeakEwma`).
 *
 * The estimate is stored as of `stampMs` and read decayed: `rttMs * exp(-(now - stampMs) / tauMs)`.
 * Reading never writes, so picks stay side-effect free; Finagle and Linkerd reach the same curve
 * by observing a zero-latency sample on every read.
 */
export interface PeakEwmaState {
  /** Latency estimate in milliseconds as of `stampMs`; meaningless while `samples` is 0. */
  rttMs: number;
  /** Clock time (ms) of the last sample. */
  stampMs: number;
  /** Decay time constant in ms; the PEAK_EWMA balancer owning this host sets it on `update`. */
  tauMs: number;
  /** Number of samples observed; 0 means "never measured". */
  samples: number;
}

/** Finagle's and Linkerd's default decay time: 10 s. */
export const DEFAULT_PEAK_EWMA_TAU_MS = 10_000;

/**
 * The live, mutable state of one endpoint. The data path owns one per endpoint per cluster, keeps
 * the same object for as long as the endpoint stays in discovery (so counters survive updates),
 * and calls `LoadBalancer.update` whenever the set or any `healthy` flag changes.
 */
export interface Host {
  readonly endpoint: Endpoint;
  /** In-flight requests (Envoy's `rq_active`). */
  active: number;
  /** False while outlier-ejected (or failing active health checks). */
  healthy: boolean;
  /** Clock ms when the endpoint joined the cluster, for slow start; `-Infinity` skips warmup. */
  addedAt: number;
  readonly ewma: PeakEwmaState;
}

/** A host as first seen by the data path: healthy, idle, never measured. */
export function createHost(endpoint: Endpoint, addedAt: number): Host {
  return {
    endpoint,
    active: 0,
    healthy: true,
    addedAt,
    ewma: { rttMs: 0, stampMs: addedAt, tauMs: DEFAULT_PEAK_EWMA_TAU_MS, samples: 0 },
  };
}

/** A request was sent to `host`. */
export function onStart(host: Host): void {
  host.active++;
}

/** A request to `host` ended without measuring it (it never reached the host): in-flight count only. */
export function onDiscard(host: Host): void {
  if (host.active > 0) host.active--;
}

/**
 * A request to `host` finished after `latencyMs`; `now` is the clock time of completion.
 *
 * The estimate becomes `max(sample, decayed estimate)`: a sample above the decayed estimate
 * replaces it at once (peak sensitivity), a lower one lets it keep decaying towards the samples
 * with time constant `tauMs`. Under steady traffic this is the curve Finagle and Linkerd follow.
 * A failed first request is not a latency measurement (a host that fails fast must not look
 * fast); later failures cannot lower the estimate by construction. Ejecting failing hosts is
 * outlier detection's job, not the balancer's.
 */
export function onFinish(host: Host, latencyMs: number, ok: boolean, now: number): void {
  if (host.active > 0) host.active--;
  const e = host.ewma;
  const sample = latencyMs > 0 ? latencyMs : 0;
  if (e.samples === 0) {
    if (!ok) return;
    e.rttMs = sample;
  } else {
    const decayed = e.rttMs * Math.exp(-(now - e.stampMs) / e.tauMs);
    e.rttMs = sample > decayed ? sample : decayed;
  }
  e.stampMs = now;
  e.samples++;
}

/** The host's latency estimate at `now` (ms), or `undefined` when never measured. */
export function peakEwmaLatency(host: Host, now: number): number | undefined {
  const e = host.ewma;
  if (e.samples === 0) return undefined;
  return e.rttMs * Math.exp(-(now - e.stampMs) / e.tauMs);
}

/** Endpoint weight as a positive number; Istio treats an unset (0) weight as 1. */
export function hostWeight(host: Host): number {
  const w = host.endpoint.weight;
  return w > 0 && Number.isFinite(w) ? w : 1;
}
