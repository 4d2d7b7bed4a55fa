import { isIdempotent } from '../resilience/hedge-policy.js';
import { RetryOn } from '../resilience/retry-on.js';
import { DEFAULT_RETRY_POLICY } from '../resilience/retry-policy.js';
import { ReplayableBody } from '../transport/replayable-body.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';
import { UpstreamRequest } from './upstream-request.js';

/**
 * Envoy's router for one call: attempts to the cluster's endpoints, retried (`retries`), hedged
 * (our addition), each within its per-try timeout and all within the call's time. The attempts
 * themselves pass the cluster's limits, its balancer's pick and the transport (UpstreamRequest).
 */
export class RetryLayer implements Layer {
  constructor(private readonly ctx: OutboundContext) {}

  handle(call: OutboundCall): void {
    const { cluster, request } = call;
    const retry = call.actions ? call.actions.retry : DEFAULT_RETRY_POLICY;
    // Streamed bodies are wrapped even without retries: a failure of the caller's stream is then
    // known to be the caller's, not the upstream's.
    const body = request.body != null ? ReplayableBody.wrap(request.body, retry ? this.ctx.retryBufferBytes : 0) : undefined;
    const hedgeAfterMs = cluster && retry && body === undefined && isIdempotent(call.method) ? cluster.hedgeAfterMs : 0;
    const passthrough = call.passthrough;
    new UpstreamRequest(call.handler, call.sent!, passthrough ? undefined : cluster, passthrough, {
      clock: this.ctx.clock,
      random: this.ctx.random,
      retry,
      timeoutMs: call.timeoutMs,
      deadlineBound: call.deadlineBound,
      responseOps: call.destinationActions?.response,
      setCookie: call.setCookie,
      hash: call.hash,
      avoidPreviousHosts: retry !== undefined && (retry.ignorePreviousHosts ?? cluster?.hashOn === undefined),
      hedgeAfterMs,
      retriableHeaderNames: retry && retry.retryOn & RetryOn['retriable-headers'] ? splitNames(call.headers.get('x-envoy-retriable-header-names')) : undefined,
      body,
      ticket: call.ticket,
      observer: call.observer,
      urlTls: call.scheme === 'https',
      live: this.ctx.live,
    }).start();
  }
}

/** `x-envoy-retriable-header-names`: a comma-separated list of response header names. */
function splitNames(value: string | undefined): readonly string[] | undefined {
  if (value === undefined) return undefined;
  const names = value
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '');
  return names.length > 0 ? names : undefined;
}
