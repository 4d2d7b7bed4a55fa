import { parseDuration } from '../duration.js';

/**
 * Our addition (Finagle's backup requests), selected by a DestinationRule annotation so Istio's own
 * fields keep their meaning and the YAML stays valid for a sidecar: when an attempt to the
 * destination has had no response for this long, a second attempt goes to another endpoint; the
 * first response wins and the other attempt is cancelled. Only idempotent requests whose body
 * can be sent twice are hedged, and a hedge is a retry: it uses one of the route's `attempts`
 * and is admitted by the cluster's `maxRetries` / `retryBudget`.
 */
export const HEDGE_AFTER_ANNOTATION = 'sidecarless.io/hedge-after';

/** The hedge delay in ms, or undefined when the value is not a duration of at least 1ms. */
export function parseHedgeAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value.trim());
  return ms !== undefined && ms >= 1 ? ms : undefined;
}

/** RFC 9110 idempotent methods: sending one twice has the effect of sending it once. */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}
