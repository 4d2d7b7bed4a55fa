import { NoTlsRouteError } from '../routing/errors.js';
import type { RouteActions } from '../routing/route-actions.js';
import { applyHeaderOps } from '../routing/route-actions.js';
import type { CompiledHttpRoute } from '../routing/route-table.js';
import { matchRoute } from '../routing/route-table.js';
import { RESPONSE_FLAGS_HEADER, ResponseFlag } from '../telemetry/response-flags.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';
import { sendLocalError, sendLocalReply } from './local-reply.js';
import { TLS_PORT_ACTIONS, tlsPortDestination } from './tls-port.js';

/** A route's compiled actions and the layers below it. */
export interface RouteStack {
  readonly actions: RouteActions;
  readonly layer: Layer;
}

/** The layers below the route: one stack per route, composed once (src/outbound/stack.ts). */
export interface RouteStacks {
  of(route: CompiledHttpRoute): RouteStack;
  /** The stack of a service without routes. */
  readonly noRoute: Layer;
  /** The stack of a TLS port's connection, routed by SNI. */
  readonly tlsPort: Layer;
}

/**
 * Envoy's route selection: the VirtualService entry a request matches (404 `NR` when none
 * does), a direct response or redirect answered here, else the route's own stack. A TLS or HTTPS
 * port is routed by SNI (`tls` routes) instead.
 */
export class RouteLayer implements Layer {
  constructor(
    private readonly stacks: RouteStacks,
    private readonly ctx: OutboundContext,
  ) {}

  handle(call: OutboundCall): void {
    const portRoute = call.portRoute!;
    if (portRoute.kind === 'tls') {
      // A protocol whose caller makes no TLS of its own (gRPC's mesh:/// channel) is refused, never sent in the clear.
      const refused = call.tlsPortRefusal(portRoute.protocol);
      if (refused) return sendLocalError(call.handler, refused);
      const destination = tlsPortDestination(portRoute, call.scheme, call.origin.hostname, this.ctx.random);
      if (destination instanceof Error) {
        // Envoy flags a connection no filter chain matches NR.
        call.observer.answeredLocally('tls-route', destination instanceof NoTlsRouteError ? ResponseFlag.NR : 0);
        return sendLocalError(call.handler, destination);
      }
      call.destination = destination;
      call.actions = TLS_PORT_ACTIONS;
      return this.stacks.tlsPort.handle(call);
    }
    const table = portRoute.table;
    if (!table) return this.stacks.noRoute.handle(call);
    const hit = matchRoute(table, call);
    if (!hit) {
      call.observer.answeredLocally('route-not-found', ResponseFlag.NR);
      return sendLocalReply(call.handler, 404, 'route not found', { [RESPONSE_FLAGS_HEADER]: 'NR' });
    }
    const route = hit.route;
    const stack = this.stacks.of(route);
    const actions = stack.actions;
    if (actions.directResponse) {
      call.observer.answeredLocally('direct-response', 0);
      return sendLocalReply(call.handler, actions.directResponse.status, actions.directResponse.body, replyHeaders(actions, {}));
    }
    if (actions.redirect) {
      const location = actions.redirect.location(call.scheme, call.authority, call.port, call.path, call.query);
      call.observer.answeredLocally('redirect', 0);
      return sendLocalReply(call.handler, actions.redirect.status, '', replyHeaders(actions, { location }));
    }
    call.route = route;
    call.matchIndex = hit.matchIndex;
    call.actions = actions;
    stack.layer.handle(call);
  }
}

/** A direct response or redirect carries the route's response header rules, as in Envoy. */
function replyHeaders(actions: RouteActions, headers: Record<string, string | string[]>): Record<string, string | string[]> {
  if (actions.responseHeaders) applyHeaderOps(headers, actions.responseHeaders);
  return headers;
}
