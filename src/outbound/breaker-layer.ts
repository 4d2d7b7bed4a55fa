import { BreakerOpenError } from '../resilience/errors.js';
import { ResponseFlag } from '../telemetry/response-flags.js';
import type { OutboundCall } from './call.js';
import type { Layer } from './layer.js';
import { answerBreakerOpen } from './resilience-replies.js';

/**
 * The service breaker the application configured for the destination (opossum's, see
 * src/resilience/service-breaker.ts) decides before anything is sent; the call's ticket is
 * settled with how it ended.
 */
export class BreakerLayer implements Layer {
  constructor(private readonly next: Layer) {}

  handle(call: OutboundCall): void {
    const breaker = call.cluster?.breaker;
    if (breaker) {
      const ticket = breaker.allow();
      if (!ticket) {
        call.observer.answeredLocally('breaker-open', ResponseFlag.UO);
        return answerBreakerOpen(call.handler, breaker, new BreakerOpenError(breaker.host), call.method, call.sent!.path);
      }
      call.ticket = ticket;
    }
    this.next.handle(call);
  }
}
