import { RETRY_ON_NAMES, parseRetryOn } from '../../resilience/retry-on.js';
import { HEDGE_AFTER_ANNOTATION, parseHedgeAfter } from '../../resilience/hedge-policy.js';
import type { ResourceKind } from '../resource.js';
import { suggestion } from './did-you-mean.js';

type FieldPath = (string | number)[];
export type SemanticReport = (code: string, message: string, path: FieldPath) => void;

/**
 * Checks the schema cannot express, made where Istio's validating webhook makes them, so a change
 * Istio would refuse is refused here too (and our own annotations are held to the same standard).
 */
export function checkSemantics(
  kind: ResourceKind,
  spec: unknown,
  annotations: Readonly<Record<string, string>> | undefined,
  error: SemanticReport,
): void {
  if (kind === 'VirtualService') checkRetries(spec, error);
  if (kind === 'DestinationRule' && annotations?.[HEDGE_AFTER_ANNOTATION] !== undefined) {
    const value = annotations[HEDGE_AFTER_ANNOTATION];
    if (parseHedgeAfter(value) === undefined) {
      error('annotation', `expected a duration of at least 1ms such as "50ms" or "0.2s", found "${value}"`, ['metadata', 'annotations', HEDGE_AFTER_ANNOTATION]);
    }
  }
}

/** Istio's validateHTTPRetry: every `retryOn` entry is a known condition or an HTTP status code. */
function checkRetries(spec: unknown, error: SemanticReport): void {
  const http = (spec as { http?: unknown } | null)?.http;
  if (!Array.isArray(http)) return;
  http.forEach((route: unknown, i) => {
    const retries = (route as { retries?: { retryOn?: unknown } } | null)?.retries;
    if (!retries) return;
    if (typeof retries.retryOn === 'string') {
      for (const bad of parseRetryOn(retries.retryOn).unknown) {
        error(
          'retry-on',
          `"${bad}" is not a valid retryOn condition${suggestion(bad, RETRY_ON_NAMES)}: expected a comma-separated list of ${RETRY_ON_NAMES.join(', ')} or HTTP status codes`,
          ['spec', 'http', i, 'retries', 'retryOn'],
        );
      }
    }
  });
}
