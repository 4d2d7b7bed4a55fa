import { remainingTimeMs } from '../resilience/deadline.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';
import type { OutboundCall } from './call.js';
import type { Layer } from './layer.js';
import { sendLocalReply } from './local-reply.js';
import { RQ_TIMEOUT_HEADER } from './rewrite-layer.js';
import { TLS_PORT_ACTIONS } from './tls-port.js';

/** Envoy reads the header as an unsigned integer and ignores anything else. */
function parseTimeoutHeader(value: string): number | undefined {
  return /^\d{1,10}$/.test(value) ? Number(value) : undefined;
}

/**
 * The time a call has: the route timeout (or the caller's x-envoy-upstream-rq-timeout-ms, which
 * Envoy lets replace it), capped by the deadline of the inbound request being handled; a deadline
 * already passed answers 504 here. The router below enforces it across attempts, as Envoy's does.
 */
export class DeadlineLayer implements Layer {
  constructor(private readonly next: Layer) {}

  handle(call: OutboundCall): void {
    const actions = call.actions;
    let timeoutMs = actions?.timeoutMs ?? 0;
    if (call.rqTimeoutHeader !== undefined) {
      if (actions === TLS_PORT_ACTIONS) {
        // On a TLS port Envoy sees only the client's encrypted bytes: the header goes on untouched.
        call.outHeaders[RQ_TIMEOUT_HEADER] = call.rqTimeoutHeader;
      } else {
        const ms = parseTimeoutHeader(call.rqTimeoutHeader);
        if (ms !== undefined) timeoutMs = ms;
      }
    }
    const remaining = remainingTimeMs();
    if (remaining !== undefined) {
      if (remaining <= 0) {
        call.observer.answeredLocally('deadline-exceeded', ResponseFlag.UT);
        return sendLocalReply(call.handler, 504, 'deadline exceeded', { [RESPONSE_FLAGS_HEADER]: 'UT' });
      }
      if (timeoutMs <= 0 || remaining < timeoutMs) {
        timeoutMs = remaining;
        call.deadlineBound = true;
      }
    }
    call.timeoutMs = timeoutMs;
    this.next.handle(call);
  }
}
