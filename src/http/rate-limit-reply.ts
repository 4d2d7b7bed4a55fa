import type { Dispatcher } from 'undici';
import { MeshClosedError } from '../errors.js';
import { RateLimitedError } from '../resilience/errors.js';
import type { RateLimitDenial } from '../resilience/rate-limit/rate-limiting.js';
import type { ReplyHeader } from '../resilience/rate-limit/rate-limit-spec.js';
import type { RouteRequest } from '../match/route-request.js';
import { sendLocalError, sendLocalReply } from './local-reply.js';
import { RequestTelemetry } from '../telemetry/request-telemetry.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';

/**
 * Set by `mesh.request` on its dispatch options: a refused request then rejects with a
 * `RateLimitedError` instead of answering 429 (what `fetch` and dispatcher callers get).
 */
export const RATE_LIMITED_AS_ERROR: unique symbol = Symbol.for('sidecarless.rateLimitedAsError.v1');

function isGrpc(contentType: string | undefined): boolean {
  return contentType !== undefined && /^application\/grpc($|[+;])/.test(contentType);
}

function addHeader(headers: Record<string, string | string[]>, h: ReplyHeader): void {
  const prior = headers[h.name];
  if (h.mode === 'set' || (h.mode === 'replace' && prior !== undefined)) headers[h.name] = h.value;
  else if (h.mode === 'if-absent' && prior === undefined) headers[h.name] = h.value;
  else if (h.mode === 'append') headers[h.name] = prior === undefined ? h.value : Array.isArray(prior) ? [...prior, h.value] : [prior, h.value];
}

/**
 * Answers a refused request without the network: Envoy's local rate-limit reply (429
 * `local_rate_limited`, or for gRPC a trailers-only 200 with UNAVAILABLE / RESOURCE_EXHAUSTED),
 * with `retry-after` and the draft-03 `x-ratelimit-*` headers, plus the limit's own reply headers.
 * For `mesh.request`, a `RateLimitedError` instead.
 */
export function sendRateLimited(handler: Dispatcher.DispatchHandler, opts: Dispatcher.DispatchOptions, denial: RateLimitDenial, request: RouteRequest): void {
  const { limit, verdict } = denial;
  if (handler instanceof RequestTelemetry) handler.answeredLocally('rate-limited', ResponseFlag.RL);
  if ((opts as { [RATE_LIMITED_AS_ERROR]?: boolean })[RATE_LIMITED_AS_ERROR]) {
    sendLocalError(handler, new RateLimitedError(limit.name, verdict.resetMs));
    return;
  }
  const resetSeconds = String(Math.max(1, Math.ceil(verdict.resetMs / 1000)));
  const headers: Record<string, string | string[]> = {
    'retry-after': resetSeconds,
    'x-ratelimit-limit': String(verdict.limit),
    'x-ratelimit-remaining': String(verdict.remaining),
    'x-ratelimit-reset': resetSeconds,
    [RESPONSE_FLAGS_HEADER]: 'RL',
  };
  const grpc = isGrpc(request.header('content-type'));
  if (grpc) {
    headers['content-type'] = 'application/grpc';
    headers['grpc-status'] = String(limit.grpcStatus);
    headers['grpc-message'] = 'local_rate_limited';
  }
  for (const h of limit.replyHeaders) addHeader(headers, h);
  if (grpc) sendLocalReply(handler, 200, '', headers);
  else sendLocalReply(handler, limit.status, 'local_rate_limited', headers);
}

/**
 * Acts on a rate-limit decision that is not a plain "go": answers a refusal, or waits for a
 * SHARED limit's answer and then refuses or `proceed`s. Returns what `dispatch` returns.
 */
export function settleRateLimit(
  decision: RateLimitDenial | Promise<RateLimitDenial | undefined>,
  handler: Dispatcher.DispatchHandler,
  opts: Dispatcher.DispatchOptions,
  request: RouteRequest,
  isClosed: () => boolean,
  proceed: () => void,
): boolean {
  if (!(decision instanceof Promise)) {
    sendRateLimited(handler, opts, decision, request);
    return true;
  }
  decision
    .then((denial) => {
      if (isClosed()) sendLocalError(handler, new MeshClosedError());
      else if (denial) sendRateLimited(handler, opts, denial, request);
      else proceed();
    })
    .catch((error: unknown) => sendLocalError(handler, error instanceof Error ? error : new Error(String(error))));
  return true;
}
