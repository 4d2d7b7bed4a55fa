import { isIdempotent } from '../resilience/hedge-policy.js';
import { RetryOn } from '../resilience/retry-on.js';
import { DEFAULT_RETRY_POLICY } from '../resilience/retry-policy.js';
import { ReplayableBody } from '../transport/replayable-body.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';
import type { UpstreamRequestInit } from './upstream-request.js';
import { UpstreamRequest } from './upstream-request.js';
import type { MeshClock, RandomSource } from '../clock.js';
import type { BreakerTicket } from '../resilience/service-breaker.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import type { HeaderOps } from '../routing/route-actions.js';
import type { InFlight } from './in-flight.js';
import type { RequestObserver } from './observer.js';

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
    new UpstreamRequest(
      call.handler,
      call.sent!,
      passthrough ? undefined : cluster,
      passthrough,
      new CallPlan(this.ctx, call, retry, body, hedgeAfterMs),
    ).start();
  }
}

/**
 * What one call's attempts share. A class, not an object literal: V8 may pretenure a literal's
 * allocation site (allocate its objects in old space) after a burst, and then every request's
 * copy lands in old space and is only reclaimed by a full collection.
 */
class CallPlan implements UpstreamRequestInit {
  readonly clock: MeshClock;
  readonly random: RandomSource;
  readonly timeoutMs: number;
  readonly deadlineBound: boolean;
  readonly responseOps: readonly HeaderOps[] | undefined;
  readonly setCookie: string | undefined;
  readonly hash: number | undefined;
  readonly avoidPreviousHosts: boolean;
  readonly retriableHeaderNames: readonly string[] | undefined;
  readonly ticket: BreakerTicket | undefined;
  readonly observer: RequestObserver;
  readonly urlTls: boolean;
  readonly live: InFlight;

  constructor(
    ctx: OutboundContext,
    call: OutboundCall,
    readonly retry: RetryPolicy | undefined,
    readonly body: ReplayableBody | undefined,
    readonly hedgeAfterMs: number,
  ) {
    this.clock = ctx.clock;
    this.random = ctx.random;
    this.timeoutMs = call.timeoutMs;
    this.deadlineBound = call.deadlineBound;
    this.responseOps = call.destinationActions?.response;
    this.setCookie = call.setCookie;
    this.hash = call.hash;
    this.avoidPreviousHosts = retry !== undefined && (retry.ignorePreviousHosts ?? call.cluster?.hashOn === undefined);
    this.retriableHeaderNames =
      retry && retry.retryOn & RetryOn['retriable-headers'] ? splitNames(call.headers.get('x-envoy-retriable-header-names')) : undefined;
    this.ticket = call.ticket;
    this.observer = call.observer;
    this.urlTls = call.scheme === 'https';
    this.live = ctx.live;
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
