import type { ResponseHandler } from '../request-protocol.js';
import type { ServiceBreaker } from '../resilience/service-breaker.js';
import { RESPONSE_FLAGS_HEADER } from '../telemetry/response-flags.js';
import { sendLocalError, sendLocalReply } from './local-reply.js';

/**
 * Envoy's answer when a circuit-breaker threshold overflows: 503, `x-envoy-overloaded: true` and
 * the router's reset text. `asError`: deliver the OverflowError instead (for callers that want
 * errors rather than responses, such as `mesh.request`).
 */
export function sendOverflowReply(handler: ResponseHandler, error: Error, asError = false): void {
  if (asError) {
    sendLocalError(handler, error);
    return;
  }
  sendLocalReply(handler, 503, 'upstream connect error or disconnect/reset before headers. reset reason: overflow', {
    'x-envoy-overloaded': 'true',
    [RESPONSE_FLAGS_HEADER]: 'UO',
  });
}

/**
 * A service breaker refused the request: the breaker's fallback answers it when there is one,
 * else 503 (or, with `asError`, the BreakerOpenError).
 */
export function answerBreakerOpen(handler: ResponseHandler, breaker: ServiceBreaker, error: Error, method: string, path: string, asError = false): void {
  const fallback = breaker.options.fallback;
  if (!fallback) {
    if (asError) sendLocalError(handler, error);
    else sendLocalReply(handler, 503, error.message, { [RESPONSE_FLAGS_HEADER]: 'UO' });
    return;
  }
  const deliver = (answer: { status?: number; headers?: Readonly<Record<string, string | string[]>>; body?: string }): void => {
    // Still the open breaker's answer, whatever the fallback made of it: flagged like the 503.
    sendLocalReply(handler, answer.status ?? 200, answer.body ?? '', { ...answer.headers, [RESPONSE_FLAGS_HEADER]: 'UO' });
  };
  try {
    const answer = fallback({ host: breaker.host, method, path });
    if (answer instanceof Promise) {
      answer.then(deliver, (cause: unknown) => sendLocalError(handler, cause instanceof Error ? cause : new Error(String(cause))));
    } else {
      deliver(answer);
    }
  } catch (cause) {
    sendLocalError(handler, cause instanceof Error ? cause : new Error(String(cause)));
  }
}
