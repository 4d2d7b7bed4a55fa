import type { OutboundCall } from './call.js';

/**
 * One step of the outbound path: it answers the call itself (a local reply, an error) or hands it
 * to the layer it wraps, now or once something it waits for is ready. A layer is made once, when
 * the stack of a route is composed (src/outbound/stack.ts), and holds no state of any one call:
 * what a call carries from layer to layer is on the call.
 */
export interface Layer {
  handle(call: OutboundCall): void;
}
