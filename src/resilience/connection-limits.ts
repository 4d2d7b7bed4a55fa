import type { OverflowError } from './errors.js';

/**
 * Admission of attempts to one cluster under its DestinationRule `connectionPool` limits (Envoy's
 * circuit-breaker thresholds). The data path calls, per attempt: `admit` before dispatching (an
 * error means: do not send, answer 503 overflow), `started` when undici hands the request a
 * connection (it stops being pending), and `finished` once when it ends, however it ends.
 */
export interface ConnectionLimits {
  admit(retry: boolean): OverflowError | undefined;
  started(): void;
  finished(started: boolean, retry: boolean): void;
}

/** No limits configured: admission costs nothing. */
export const UNLIMITED: ConnectionLimits = {
  admit: () => undefined,
  started: () => undefined,
  finished: () => undefined,
};
