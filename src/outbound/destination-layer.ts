import { pickDestination } from '../routing/route-table.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';
import { sendLocalReply } from './local-reply.js';

/**
 * The route's weighted destination (`route[].weight`), drawn once per call; without a route the
 * service itself, on the port the caller wrote.
 */
export class DestinationLayer implements Layer {
  constructor(
    private readonly next: Layer,
    private readonly ctx: OutboundContext,
  ) {}

  handle(call: OutboundCall): void {
    const route = call.route;
    // A TLS port's route chose its destination already.
    const destination = call.destination ?? (route ? pickDestination(route, this.ctx.random()) : undefined);
    if (route && !destination) return sendLocalReply(call.handler, 500, 'route has no destination');
    call.destination = destination;
    call.host = destination?.host ?? call.serviceHost;
    call.destinationPort = destination?.port ?? call.port;
    this.next.handle(call);
  }
}
