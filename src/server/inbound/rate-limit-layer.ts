import type { RateLimitDenial, RateLimiting } from '../../resilience/rate-limit/rate-limiting.js';
import type { RateLimitTable, ReplyHeader } from '../../resilience/rate-limit/rate-limit-spec.js';
import { ResponseFlag } from '../../telemetry/response-flags.js';
import type { InboundLayer, InboundReply, LayerOutcome } from '../../security/inbound/inbound-layer.js';
import type { InboundRequest } from '../../security/inbound/inbound-request.js';

function addHeader(headers: Record<string, string | string[]>, h: ReplyHeader): void {
  const prior = headers[h.name];
  if (h.mode === 'set' || (h.mode === 'replace' && prior !== undefined)) headers[h.name] = h.value;
  else if (h.mode === 'if-absent' && prior === undefined) headers[h.name] = h.value;
  else if (h.mode === 'append') headers[h.name] = prior === undefined ? h.value : Array.isArray(prior) ? [...prior, h.value] : [prior, h.value];
}

/**
 * Envoy's local rate-limit reply on the inbound listener: 429 `local_rate_limited` (or the
 * limit's status; for gRPC a trailers-only 200 with UNAVAILABLE or RESOURCE_EXHAUSTED), with
 * `retry-after`, the draft-03 `x-ratelimit-*` headers and the limit's `response_headers_to_add`.
 */
export function rateLimitReply(denial: RateLimitDenial, request: InboundRequest): InboundReply {
  const { limit, verdict } = denial;
  const resetSeconds = String(Math.max(1, Math.ceil(verdict.resetMs / 1000)));
  const headers: Record<string, string | string[]> = {
    'content-type': 'text/plain',
    'retry-after': resetSeconds,
    'x-ratelimit-limit': String(verdict.limit),
    'x-ratelimit-remaining': String(verdict.remaining),
    'x-ratelimit-reset': resetSeconds,
  };
  const grpc = /^application\/grpc($|[+;])/.test(request.header('content-type') ?? '');
  if (grpc) {
    headers['content-type'] = 'application/grpc';
    headers['grpc-status'] = String(limit.grpcStatus);
    headers['grpc-message'] = 'local_rate_limited';
  }
  for (const h of limit.replyHeaders) addHeader(headers, h);
  return {
    status: grpc ? 200 : limit.status,
    headers,
    body: grpc ? '' : 'local_rate_limited',
    reason: 'rate_limit',
    flags: ResponseFlag.RL,
    decidedBy: limit.name,
  };
}

/** The inbound listener's local rate limits (SIDECAR_INBOUND EnvoyFilters), one token per request. */
export class InboundRateLimitLayer implements InboundLayer {
  readonly name = 'rate-limit';

  constructor(
    private readonly limits: RateLimiting,
    private readonly table: RateLimitTable,
  ) {}

  handle(request: InboundRequest): LayerOutcome {
    const decision = this.limits.checkInbound(this.table, request, request.host.replace(/:\d+$/, ''));
    if (decision === undefined) return undefined;
    if (decision instanceof Promise) return decision.then((d) => (d ? rateLimitReply(d, request) : undefined));
    return rateLimitReply(decision, request);
  }
}
