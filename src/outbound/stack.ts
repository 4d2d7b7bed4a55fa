import { routeActions } from '../routing/route-actions.js';
import type { CompiledHttpRoute } from '../routing/route-table.js';
import { BreakerLayer } from './breaker-layer.js';
import { ClusterLayer } from './cluster-layer.js';
import type { OutboundContext } from './context.js';
import { DeadlineLayer } from './deadline-layer.js';
import { DestinationLayer } from './destination-layer.js';
import { FaultLayer } from './fault-layer.js';
import type { Layer } from './layer.js';
import { MirrorLayer } from './mirror-layer.js';
import { RateLimitLayer } from './rate-limit-layer.js';
import { RetryLayer } from './retry-layer.js';
import { RewriteLayer } from './rewrite-layer.js';
import type { RouteStack, RouteStacks } from './route-layer.js';
import { RouteLayer } from './route-layer.js';
import { ServiceLayer } from './service-layer.js';
import { TelemetryLayer } from './telemetry-layer.js';

/** A layer made around the one below it; `false` leaves it out of a stack. */
type LayerOf = ((next: Layer) => Layer) | false;

/**
 * The outbound stack, top to bottom: what a sidecar does with an outbound request. Above the
 * route, every call passes the same layers; below it, each route has a stack of its own, composed
 * the first time the route is taken and kept for the snapshot's life (a route is compiled once
 * per snapshot), with only the layers it needs.
 */
export function outboundStack(ctx: OutboundContext): Layer {
  const stacks = new ComposedRouteStacks((route, tlsPort) => routeLayers(ctx, route, tlsPort));
  return compose([
    (next) => new ServiceLayer(next, ctx), // host → service; hosts no configuration covers pass through
    ctx.telemetry !== undefined && ((next) => new TelemetryLayer(next, ctx.telemetry!)), // spans and metrics observe the call
    () => new RouteLayer(stacks, ctx), // VirtualService match, direct response, redirect; TLS ports by SNI
  ]);
}

/** The layers of one route, top to bottom. */
function routeLayers(ctx: OutboundContext, route: CompiledHttpRoute | undefined, tlsPort: boolean): LayerOf[] {
  const fault = route !== undefined && routeActions(route).fault !== undefined;
  const mirrors = route !== undefined && route.mirrors.length > 0;
  return [
    fault && ((next) => new FaultLayer(next, ctx)), // delay, then abort
    (next) => new DestinationLayer(next, ctx), // the weighted destination
    !tlsPort && ctx.rateLimits !== undefined && ((next) => new RateLimitLayer(next, ctx)), // client-side rate limits
    (next) => new ClusterLayer(next, ctx), // its cluster and TLS; waits for a first DNS answer or credentials
    (next) => new RewriteLayer(next, ctx), // header rules, path rewrite, hash key
    (next) => new DeadlineLayer(next), // route timeout, capped by the inbound deadline
    (next) => new BreakerLayer(next), // the application's service breaker
    mirrors && ((next) => new MirrorLayer(next, ctx)), // copies, fire and forget
    () => new RetryLayer(ctx), // attempts: retries, hedges, per-try timeout; limits, pick, transport
  ];
}

/**
 * The same layers for a gRPC call (src/grpc/grpc-call.ts), whose protocol side answers what
 * differs: its local replies become gRPC statuses, hosts no configuration covers and TLS ports
 * are refused. Telemetry starts with the call (in the caller's context), not in a layer. Below the
 * cluster, `call` is gRPC's own layer (src/grpc/grpc-call-layer.ts): metadata rules, path
 * rewrite, authority, deadline, hash, then the call's attempts on the attempt engine. No mirror
 * (gRPC has none), no HTTP router.
 */
export function grpcOutboundStack(ctx: OutboundContext, call: Layer): Layer {
  const stacks = new ComposedRouteStacks((route) => grpcRouteLayers(ctx, route, call));
  return compose([
    (next) => new ServiceLayer(next, ctx), // host → service; hosts no configuration covers are refused
    () => new RouteLayer(stacks, ctx), // VirtualService match, direct response, redirect; TLS ports refused
  ]);
}

/** The layers of one route for a gRPC call, top to bottom. */
function grpcRouteLayers(ctx: OutboundContext, route: CompiledHttpRoute | undefined, call: Layer): LayerOf[] {
  const fault = route !== undefined && routeActions(route).fault !== undefined;
  return [
    fault && ((next) => new FaultLayer(next, ctx)), // delay, then abort (with the route's grpcStatus)
    (next) => new DestinationLayer(next, ctx), // the weighted destination
    ctx.rateLimits !== undefined && ((next) => new RateLimitLayer(next, ctx)), // client-side rate limits
    (next) => new ClusterLayer(next, ctx), // its cluster and TLS; waits for a first DNS answer or credentials
    () => call, // metadata rules, rewrite, deadline, hash; the attempts
  ];
}

class ComposedRouteStacks implements RouteStacks {
  private readonly byRoute = new WeakMap<CompiledHttpRoute, RouteStack>();
  readonly noRoute: Layer;
  readonly tlsPort: Layer;

  constructor(private readonly layersOf: (route: CompiledHttpRoute | undefined, tlsPort: boolean) => readonly LayerOf[]) {
    this.noRoute = compose(layersOf(undefined, false));
    this.tlsPort = compose(layersOf(undefined, true));
  }

  of(route: CompiledHttpRoute): RouteStack {
    let stack = this.byRoute.get(route);
    if (stack === undefined) {
      stack = { actions: routeActions(route), layer: compose(this.layersOf(route, false)) };
      this.byRoute.set(route, stack);
    }
    return stack;
  }
}

/** Builds a stack from its list, bottom up: each layer wraps the one after it. */
function compose(layers: readonly LayerOf[]): Layer {
  let next: Layer | undefined;
  for (let i = layers.length - 1; i >= 0; i--) {
    const make = layers[i];
    if (make) next = make(next!);
  }
  return next!;
}
