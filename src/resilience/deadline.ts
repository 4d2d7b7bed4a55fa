import { AsyncLocalStorage } from 'node:async_hooks';
import { sharedState } from '../shared-state.js';

/**
 * Deadline propagation (our addition, not an Istio field): while a request is being handled, the
 * time left to answer it caps every outbound call made on its behalf. Server integrations set it
 * from `grpc-timeout` or their own timeout; `runWithDeadline` sets it explicitly. Carried by
 * AsyncLocalStorage, so it follows awaits, timers and callbacks without being passed around.
 */
export interface Deadline {
  /** `performance.now()` milliseconds at which the inbound request's time is up. */
  readonly at: number;
}

// One store per process, whichever build (ESM or CJS) set the deadline and whichever reads it.
const storage = sharedState('deadline.v1', () => new AsyncLocalStorage<Deadline>());

/**
 * Runs `fn` with a deadline `timeoutMs` from now. A deadline already in force that is sooner wins:
 * an inner call can shorten the time left, never lengthen it.
 */
export function runWithDeadline<T>(timeoutMs: number, fn: () => T): T {
  const at = performance.now() + Math.max(0, timeoutMs);
  const outer = storage.getStore();
  return storage.run(outer && outer.at <= at ? outer : { at }, fn);
}

/** Milliseconds left before the current deadline, or undefined outside one. May be ≤ 0. */
export function remainingTimeMs(): number | undefined {
  const deadline = storage.getStore();
  return deadline === undefined ? undefined : deadline.at - performance.now();
}

const GRPC_UNITS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * The timeout a gRPC client sent (`grpc-timeout: 100m`: at most 8 digits then H, M, S, m, u or n),
 * in milliseconds, or undefined when absent or malformed.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * GRPC_UNITS[m[2]!]!;
}

/** `grpc-timeout` for an outbound gRPC call with `ms` left: milliseconds, rounded up. */
export function formatGrpcTimeout(ms: number): string {
  return `${Math.max(1, Math.ceil(ms))}m`;
}
