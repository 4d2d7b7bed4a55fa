/**
 * Envoy's priority load and panic threshold, as pure functions over host counts per priority.
 *
 * Istio has no `panicThreshold` field. It sets Envoy's `healthy_panic_threshold` from
 * `outlierDetection.minHealthPercent` whenever a DestinationRule has `outlierDetection` (proto
 * default 0, which disables panic); without `outlierDetection` Envoy's default of 50% applies.
 */

/** Envoy's `healthy_panic_threshold` default. */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

/** Envoy's `overprovisioning_factor` default (140%). */
export const DEFAULT_OVERPROVISIONING_FACTOR = 1.4;

/** How traffic splits across priorities, computed when hosts or health change. */
export interface PriorityLoad {
  /** Integer percentage of traffic per priority; sums to 100 unless there are no priorities. */
  readonly load: readonly number[];
  /** Per priority: in panic, so it balances across all its hosts regardless of health. */
  readonly panic: readonly boolean[];
}

/**
 * Health of one priority level: percent healthy times the overprovisioning factor, capped at
 * 100 and truncated to an integer, as Envoy computes it.
 */
export function priorityHealth(healthy: number, total: number, overprovisioningPercent: number): number {
  if (total === 0) return 0;
  return Math.min(100, Math.floor((overprovisioningPercent * healthy) / total));
}

/** True when the healthy share of a level is below the panic threshold (Envoy's `isHostSetInPanic`). */
export function isInPanic(healthy: number, total: number, panicThresholdPercent: number): boolean {
  const healthyPercent = total === 0 ? 0 : (100 * healthy) / total;
  return healthyPercent < Math.min(100, panicThresholdPercent);
}

/**
 * Envoy's priority load. Each level gets `health * 100 / normalizedTotalHealth` percent in
 * priority order until 100 is used up (rounding remainder to the first level with any health).
 * When the normalized total health (the capped sum) is 100, nothing panics. Below 100, a level
 * whose healthy share is under the threshold panics; if every level panics, load is re-spread in
 * proportion to each level's host count. With the threshold at 0 and nothing healthy, priority 0
 * gets 100% and a pick finds no host.
 */
export function computePriorityLoad(
  healthy: readonly number[],
  total: readonly number[],
  panicThresholdPercent: number,
  overprovisioningFactor: number,
): PriorityLoad {
  const levels = total.length;
  const load: number[] = new Array<number>(levels).fill(0);
  const panic: boolean[] = new Array<boolean>(levels).fill(false);
  if (levels === 0) return { load, panic };
  // Rounded first: 1.4 * 100 is 139.99999999999997 in binary floating point.
  const overprovisioningPercent = Math.round(overprovisioningFactor * 100);
  const health = total.map((t, i) => priorityHealth(healthy[i] ?? 0, t, overprovisioningPercent));
  const normalizedTotal = Math.min(
    100,
    health.reduce((a, b) => a + b, 0),
  );

  if (normalizedTotal > 0) {
    let remaining = 100;
    let firstAvailable = -1;
    for (let i = 0; i < levels; i++) {
      if (firstAvailable < 0 && health[i]! > 0) firstAvailable = i;
      const share = Math.min(remaining, Math.floor((health[i]! * 100) / normalizedTotal));
      load[i] = share;
      remaining -= share;
    }
    load[firstAvailable] = load[firstAvailable]! + remaining;
  }

  const threshold = Math.min(100, panicThresholdPercent);
  if (threshold <= 0 && normalizedTotal === 0) {
    load[0] = 100;
    return { load, panic };
  }
  if (normalizedTotal === 100) return { load, panic };

  let allInPanic = true;
  for (let i = 0; i < levels; i++) {
    panic[i] = isInPanic(healthy[i] ?? 0, total[i]!, threshold);
    if (!panic[i]) allInPanic = false;
  }
  if (allInPanic) {
    const hostCount = total.reduce((a, b) => a + b, 0);
    if (hostCount === 0) return { load, panic };
    let remaining = 100;
    let firstNonEmpty = -1;
    for (let i = 0; i < levels; i++) {
      if (firstNonEmpty < 0 && total[i]! > 0) firstNonEmpty = i;
      load[i] = Math.floor((100 * total[i]!) / hostCount);
      remaining -= load[i]!;
    }
    load[firstNonEmpty] = load[firstNonEmpty]! + remaining;
  }
  return { load, panic };
}
