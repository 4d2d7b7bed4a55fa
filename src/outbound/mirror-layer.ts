import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';

/**
 * Envoy's request mirroring (VirtualService `mirror`, `mirrors`): copies go out, fire and forget,
 * once the call itself is on its way. Only in the stack of a route that mirrors.
 */
export class MirrorLayer implements Layer {
  constructor(
    private readonly next: Layer,
    private readonly ctx: OutboundContext,
  ) {}

  handle(call: OutboundCall): void {
    this.next.handle(call);
    this.ctx.mirror.send(
      call.route!.mirrors,
      call.request,
      call.scheme,
      call.port,
      call.sent!.path,
      call.outHeaders,
      call.actions?.timeoutMs ?? 0,
      call.observer,
    );
  }
}
