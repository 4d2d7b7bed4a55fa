import type { FaultActions } from '../routing/route-actions.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';
import { sendLocalReply } from './local-reply.js';
import { handleSafely, WaitingRequest } from './waiting-request.js';

/**
 * Envoy's fault filter (VirtualService `fault`): the delay is drawn first, the abort after the
 * delay has passed. Only in the stack of a route that has a fault.
 */
export class FaultLayer implements Layer {
  constructor(
    private readonly next: Layer,
    private readonly ctx: OutboundContext,
  ) {}

  handle(call: OutboundCall): void {
    const fault = call.actions!.fault!;
    if (fault.delayFraction > 0 && this.ctx.random() < fault.delayFraction) {
      call.observer.delayed(fault.delayMs);
      const waiting = new WaitingRequest(this.ctx.live, call.handler, 'was waiting out a fault delay');
      waiting.cancelTimer = this.ctx.clock.schedule(
        fault.delayMs,
        () => {
          if (waiting.proceed() && !this.abort(fault, call, true)) handleSafely(this.next, call);
        },
        'request',
      );
      return;
    }
    if (!this.abort(fault, call, false)) this.next.handle(call);
  }

  /** Answers with the route's fault abort when this call draws it; true when it did. */
  private abort(fault: FaultActions, call: OutboundCall, delayed: boolean): boolean {
    if (fault.abortFraction <= 0 || this.ctx.random() >= fault.abortFraction) return false;
    call.observer.answeredLocally('fault-abort', ResponseFlag.FI);
    const flags = delayed ? 'DI,FI' : 'FI';
    if (fault.abortGrpcStatus !== undefined && isGrpcRequest(call.header('content-type'))) {
      // Envoy's local reply to a gRPC request: trailers-only, HTTP 200, the status in headers.
      sendLocalReply(call.handler, 200, '', {
        'content-type': 'application/grpc',
        'grpc-status': String(fault.abortGrpcStatus),
        'grpc-message': 'fault filter abort',
        [RESPONSE_FLAGS_HEADER]: flags,
      });
    } else {
      sendLocalReply(call.handler, fault.abortStatus, 'fault filter abort', { [RESPONSE_FLAGS_HEADER]: flags });
    }
    return true;
  }
}

/** Envoy's test for a gRPC request: `application/grpc`, `application/grpc+proto`, `application/grpc;...`. */
function isGrpcRequest(contentType: string | undefined): boolean {
  if (!contentType?.startsWith('application/grpc')) return false;
  const next = contentType.charCodeAt(16);
  return Number.isNaN(next) || next === 43 /* + */ || next === 59; /* ; */
}
