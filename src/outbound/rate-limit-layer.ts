import type { RateLimiting } from '../resilience/rate-limit/rate-limiting.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';
import { settleRateLimit } from './rate-limit-reply.js';

/**
 * Client-side rate limits, decided once per call before anything is sent (a SHARED limit may
 * answer later: the call waits for it). Only in the stacks of a mesh that has rate limits.
 */
export class RateLimitLayer implements Layer {
  private readonly limits: RateLimiting;

  constructor(
    private readonly next: Layer,
    private readonly ctx: OutboundContext,
  ) {
    this.limits = ctx.rateLimits!;
  }

  handle(call: OutboundCall): void {
    const route = call.route;
    const limited = this.limits.check(
      this.ctx.destinations.snapshot().rateLimits,
      call,
      call.serviceHost,
      route ? (route.name ?? '') : 'default',
      call.host,
      call.destination?.subset,
      call.destinationPort,
    );
    if (limited) settleRateLimit(limited, call, this.ctx, this.next);
    else this.next.handle(call);
  }
}
