import { Metadata } from '@grpc/grpc-js';
import type { StatusObject } from '@grpc/grpc-js';
import type { RateLimitDenial } from '../resilience/rate-limit/rate-limiting.js';
import type { ReplyHeader } from '../resilience/rate-limit/rate-limit-spec.js';

function add(metadata: Metadata, h: ReplyHeader): void {
  const present = metadata.get(h.name).length > 0;
  if (h.mode === 'append') metadata.add(h.name, h.value);
  else if (h.mode === 'set' || (h.mode === 'replace' && present) || (h.mode === 'if-absent' && !present)) metadata.set(h.name, h.value);
}

/**
 * A gRPC call a client-side rate limit refused, as Envoy's local rate limit answers a gRPC
 * request: trailers only, the limit's gRPC status (UNAVAILABLE, the gRPC mapping of 429, unless
 * the limit asks for RESOURCE_EXHAUSTED), `local_rate_limited`, and the headers the HTTP reply
 * carries (`retry-after`, draft-03 `x-ratelimit-*`, the limit's own) as metadata.
 */
export function rateLimitedStatus(denial: RateLimitDenial): StatusObject {
  const { limit, verdict } = denial;
  const reset = String(Math.max(1, Math.ceil(verdict.resetMs / 1000)));
  const metadata = new Metadata();
  metadata.set('retry-after', reset);
  metadata.set('x-ratelimit-limit', String(verdict.limit));
  metadata.set('x-ratelimit-remaining', String(verdict.remaining));
  metadata.set('x-ratelimit-reset', reset);
  for (const h of limit.replyHeaders) {
    // A name or value grpc-js cannot carry is left out: the refusal itself still stands.
    try {
      add(metadata, h);
    } catch {
      continue;
    }
  }
  return { code: limit.grpcStatus, details: 'local_rate_limited', metadata };
}
