import type { Host } from '../balancer/index.js';
import type { MeshClock } from '../clock.js';
import type { EjectionReason } from './events.js';
import type { OutlierPolicy } from './outlier-policy.js';
import type { AttemptOutcome } from './outcome.js';
import { isGatewayError } from './outcome.js';

const TIMER_SLACK_MS = 1;
/** What the detector tells its cluster when a host's ejection changes. */
export interface EjectionChange {
  readonly action: 'eject' | 'uneject';
  readonly reason: EjectionReason | undefined;
  readonly ejections: number;
  readonly durationMs: number | undefined;
}

/** An ejected host's ejection, for inspection. */
export interface EjectionState {
  /** Clock ms of the ejection. */
  readonly ejectedAt: number;
  /** Clock ms from which the host may return (it does at the next interval check). */
  readonly returnsAt: number;
  /** How many times the host was ejected. */
  readonly ejections: number;
}

export interface OutlierDetectorDeps {
  readonly clock: MeshClock;
  /** A host was ejected or returned (its `healthy` flag already set): refresh the balancer. */
  readonly onChange: (host: Host, change: EjectionChange) => void;
}

/** Envoy's per-host monitor: consecutive counters and ejection history. */
interface Monitor {
  consecutive5xx: number;
  consecutiveGateway: number;
  consecutiveLocalOrigin: number;
  ejected: boolean;
  ejectedAt: number;
  /** Envoy's `ejectTimeBackoff`: the multiplier of the base ejection time. */
  backoff: number;
  ejections: number;
  /** Clock time of the last return; -1 before the first. */
  unejectedAt: number;
}

/**
 * Envoy's consecutive-error outlier detection for one cluster (Envoy's
 * `outlier_detection_impl.cc`, as istiod configures it: success-rate and failure-percentage
 * detection off):
 *
 * - A response is counted by status; with `splitExternalLocalOriginErrors` off, a local-origin
 *   failure counts as Envoy maps it (a timeout as a 504, anything else as a 503). With it on,
 *   local-origin failures have their own counter, and any response resets it.
 * - Reaching a threshold exactly ejects the host when no host is ejected yet (at least one may
 *   always be), or when the ejected share, counting this host, stays within `maxEjectionPercent`
 *   (Envoy ≥ 1.27 with `always_eject_one_host`). The counter of that detection restarts either way.
 * - The host stays out for `baseEjectionTime` × its backoff (capped at `max_ejection_time`); it
 *   returns at the first interval check after that. Each ejection raises the backoff by one (up
 *   to the cap); each check that finds the host healthy at least an interval after its return
 *   lowers it by one.
 *
 * The interval timer only runs while some host is ejected or has backoff to decay; Envoy's runs
 * from cluster creation, so our checks are aligned to the first ejection instead (a return can be
 * up to one interval earlier or later than behind a sidecar, never before the ejection time).
 */
export class OutlierDetector {
  private readonly monitors = new Map<Host, Monitor>();
  private ejectedCount = 0;
  private cancelTimer: (() => void) | undefined;
  private closed = false;

  constructor(
    private policy: OutlierPolicy,
    private readonly deps: OutlierDetectorDeps,
  ) {}

  /** A new snapshot changed the policy: counters and ejections carry over. */
  setPolicy(policy: OutlierPolicy): void {
    this.policy = policy;
  }

  /** Follows the cluster's host set: new hosts get a monitor, departed ones lose theirs. */
  setHosts(hosts: readonly Host[]): void {
    const keep = new Set(hosts);
    for (const [host, monitor] of this.monitors) {
      if (keep.has(host)) continue;
      if (monitor.ejected) this.ejectedCount--;
      this.monitors.delete(host);
    }
    for (const host of hosts) {
      if (!this.monitors.has(host)) {
        this.monitors.set(host, {
          consecutive5xx: 0,
          consecutiveGateway: 0,
          consecutiveLocalOrigin: 0,
          ejected: false,
          ejectedAt: 0,
          backoff: 0,
          ejections: 0,
          unejectedAt: -1,
        });
      }
    }
  }

  isEjected(host: Host): boolean {
    return this.monitors.get(host)?.ejected ?? false;
  }

  /** The ejection of `host` now; undefined when it is not ejected. */
  ejection(host: Host): EjectionState | undefined {
    const m = this.monitors.get(host);
    if (!m?.ejected) return undefined;
    const policy = this.policy;
    return { ejectedAt: m.ejectedAt, returnsAt: m.ejectedAt + Math.min(policy.baseEjectionMs * m.backoff, policy.maxEjectionMs), ejections: m.ejections };
  }

  /** How many hosts are ejected now. */
  get ejected(): number {
    return this.ejectedCount;
  }

  /** One attempt's outcome at `host`. Allocates nothing unless it ejects. */
  report(host: Host, outcome: AttemptOutcome): void {
    const monitor = this.monitors.get(host);
    if (monitor === undefined) return;
    const policy = this.policy;
    if (outcome.status > 0) {
      // The connection worked: in split mode that alone clears the local-origin count.
      if (policy.splitLocalOrigin) monitor.consecutiveLocalOrigin = 0;
      const codes = policy.errorCodes;
      let status = outcome.status;
      if (codes !== undefined) status = codes.has(status) ? (status >= 500 && status < 600 ? status : 500) : 200;
      this.putStatus(host, monitor, status);
      return;
    }
    const failure = outcome.failure;
    if (failure === undefined) return;
    if (policy.splitLocalOrigin) {
      if (++monitor.consecutiveLocalOrigin === policy.consecutiveLocalOrigin) this.detected(host, monitor, 'consecutive-local-origin-failure');
    } else {
      // Envoy's resultToHttpCode: LocalOriginTimeout → 504, LocalOriginConnectFailed → 503.
      this.putStatus(host, monitor, failure === 'timeout' ? 504 : 503);
    }
  }

  /** Cancels the interval timer; ejected hosts stay as they are. */
  close(): void {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  /** Returns every ejected host at once (the cluster stopped detecting outliers). */
  releaseAll(): void {
    const now = this.deps.clock.now();
    for (const [host, monitor] of this.monitors) if (monitor.ejected) this.uneject(host, monitor, now);
    this.close();
  }

  private putStatus(host: Host, monitor: Monitor, status: number): void {
    const policy = this.policy;
    if (status >= 500 && status < 600) {
      if (isGatewayError(status)) {
        if (++monitor.consecutiveGateway === policy.consecutiveGateway) this.detected(host, monitor, 'consecutive-gateway-failure');
      } else {
        monitor.consecutiveGateway = 0;
      }
      if (++monitor.consecutive5xx === policy.consecutive5xx) this.detected(host, monitor, 'consecutive-5xx');
    } else {
      monitor.consecutive5xx = 0;
      monitor.consecutiveGateway = 0;
    }
  }

  /** Envoy's onConsecutiveErrorWorker: try to eject, then restart that detection's count. */
  private detected(host: Host, monitor: Monitor, reason: EjectionReason): void {
    if (monitor.ejected) return;
    const policy = this.policy;
    // At least one host may always be ejected (Envoy's `always_eject_one_host`, the old Envoy rule
    // Istio's tasks rely on); beyond it, the share after ejecting must stay within the limit.
    if (this.ejectedCount === 0 || (100 * (this.ejectedCount + 1)) / this.monitors.size <= policy.maxEjectionPercent) {
      this.eject(host, monitor, reason);
    }
    if (reason === 'consecutive-5xx') monitor.consecutive5xx = 0;
    else if (reason === 'consecutive-gateway-failure') monitor.consecutiveGateway = 0;
    else monitor.consecutiveLocalOrigin = 0;
  }

  private eject(host: Host, monitor: Monitor, reason: EjectionReason): void {
    const policy = this.policy;
    monitor.ejected = true;
    monitor.ejections++;
    monitor.ejectedAt = this.deps.clock.now();
    if (monitor.backoff * policy.baseEjectionMs < policy.maxEjectionMs + policy.baseEjectionMs) monitor.backoff++;
    this.ejectedCount++;
    host.healthy = false;
    this.deps.onChange(host, {
      action: 'eject',
      reason,
      ejections: monitor.ejections,
      durationMs: Math.min(policy.baseEjectionMs * monitor.backoff, policy.maxEjectionMs),
    });
    this.arm();
  }

  private uneject(host: Host, monitor: Monitor, now: number): void {
    monitor.ejected = false;
    monitor.unejectedAt = now;
    // Fresh counters, so a host close to a threshold is not ejected again by a few new errors.
    monitor.consecutive5xx = 0;
    monitor.consecutiveGateway = 0;
    monitor.consecutiveLocalOrigin = 0;
    this.ejectedCount--;
    host.healthy = host.endpoint.ready;
    this.deps.onChange(host, { action: 'uneject', reason: undefined, ejections: monitor.ejections, durationMs: undefined });
  }

  private arm(): void {
    if (this.cancelTimer !== undefined || this.closed) return;
    this.cancelTimer = this.deps.clock.schedule(this.policy.intervalMs, this.tick, 'background');
  }

  /** Envoy's onIntervalTimer: return hosts whose time is up, decay the backoff of healthy ones. */
  private readonly tick = (): void => {
    this.cancelTimer = undefined;
    if (this.closed) return;
    const policy = this.policy;
    const now = this.deps.clock.now();
    for (const [host, monitor] of this.monitors) {
      // TIMER_SLACK_MS: Node timers may fire up to a millisecond early against performance.now();
      // without it a host due now would wait a whole extra interval.
      if (monitor.ejected && Math.min(policy.baseEjectionMs * monitor.backoff, policy.maxEjectionMs) <= now - monitor.ejectedAt + TIMER_SLACK_MS) {
        this.uneject(host, monitor, now);
      }
    }
    let decaying = false;
    for (const monitor of this.monitors.values()) {
      if (!monitor.ejected && monitor.unejectedAt >= 0 && now - monitor.unejectedAt + TIMER_SLACK_MS >= policy.intervalMs && monitor.backoff > 0) {
        monitor.backoff--;
      }
      if (!monitor.ejected && monitor.backoff > 0) decaying = true;
    }
    if (this.ejectedCount > 0 || decaying) this.arm();
  };
}
