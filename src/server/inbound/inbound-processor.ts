import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Snapshot } from '../../config/snapshot.js';
import { parseGrpcTimeout, runWithDeadline } from '../../resilience/deadline.js';
import type { MeshTelemetry } from '../../telemetry/mesh-telemetry.js';
import type { InboundLayer, InboundReply } from '../../security/inbound/inbound-layer.js';
import { runLayers } from '../../security/inbound/inbound-layer.js';
import type { NodeRequest } from '../../security/inbound/inbound-request.js';
import { InboundRequest } from '../../security/inbound/inbound-request.js';
import type { PathNormalization } from './path-normalization.js';
import { hidesUnreserved, normalizeRequestPath } from './path-normalization.js';
import type { DestinationLabels, ServerExchange } from './server-telemetry.js';
import { beginServerExchange } from './server-telemetry.js';
import type { InboundEntry } from './inbound-api.js';

export type NodeResponse = ServerResponse | Http2ServerResponse;

/** What an integration does with the processor's decision. */
export interface InboundHandlers {
  /** Admitted: hand the request to the application (called inside the request's context). */
  proceed(): void;
  /** The mesh answers: write `reply` (through the framework's reply API where it has one). */
  reply(reply: InboundReply): void;
}

/** How an integration lets the application see the normalised path. */
export type PathRewrite =
  /** Replace `req.url` (node:http, Express: routing happens after the mesh). */
  | 'rewrite'
  /** The framework routed already (Fastify without `rewriteUrl`): a path that normalises differently is refused with 400. */
  | 'refuse';

export interface InboundProcessorDeps {
  snapshot(): Snapshot | undefined;
  /** The layers for a snapshot (built once per snapshot by the mesh). */
  layers(snapshot: Snapshot): readonly InboundLayer[];
  readonly telemetry: MeshTelemetry | undefined;
  destination(): DestinationLabels;
  readonly normalization: PathNormalization;
  readonly trustedProxies: number;
  /** The deadline of a request that carries none, in ms; undefined for none. */
  readonly timeoutMs: number | undefined;
  /** The mesh answered a request itself (metrics). */
  answered(reply: InboundReply): void;
}

const REQUEST_VIEW: unique symbol = Symbol.for('sidecarless.inboundRequest.v1') as never;

interface Carrier {
  [REQUEST_VIEW]?: InboundRequest;
}

/** The deadline a request carries: `grpc-timeout`, else Envoy's `x-envoy-expected-rq-timeout-ms`. */
function deadlineOf(request: InboundRequest, fallback: number | undefined): number | undefined {
  const grpc = request.header('grpc-timeout');
  if (grpc !== undefined) {
    const ms = parseGrpcTimeout(grpc);
    if (ms !== undefined) return ms;
  }
  const envoy = request.header('x-envoy-expected-rq-timeout-ms');
  if (envoy !== undefined && /^\d+$/.test(envoy)) return Number(envoy);
  return fallback;
}

function badRequest(body: string): InboundReply {
  return { status: 400, headers: { 'content-type': 'text/plain' }, body, reason: 'bad_request', flags: 0 };
}

/**
 * The inbound path shared by every integration: normalises the path (Istio's
 * `pathNormalization`), builds the request view once, runs the snapshot's layers (RequestAuthentication,
 * AuthorizationPolicy, rate limits), and hands an admitted request to the application inside its
 * context: the server span as the active span and the request's deadline for outbound calls.
 */
export class InboundProcessor implements InboundEntry {
  constructor(private readonly deps: InboundProcessorDeps) {}

  handle(req: NodeRequest, res: NodeResponse, rewrite: PathRewrite, handlers: InboundHandlers): void {
    const deps = this.deps;
    const target = req.url ?? '/';
    const normalized = normalizeRequestPath(target, deps.normalization);
    if (!normalized.ok) {
      this.answer(undefined, badRequest('Bad Request'), handlers);
      return;
    }
    if (rewrite === 'refuse' && hidesUnreserved(normalized.path)) {
      // The framework decodes before routing: the policies must see what it routes on.
      this.answer(undefined, badRequest('the path encodes characters that need no encoding; send them as they are'), handlers);
      return;
    }
    const query = normalized.query ?? '';
    const url = query === '' ? normalized.path : `${normalized.path}?${query}`;
    if (url !== target) {
      if (rewrite === 'refuse' && url !== target.replace(/#.*$/, '')) {
        this.answer(undefined, badRequest(`the path is not in normal form (${deps.normalization}); it normalises to ${normalized.path}`), handlers);
        return;
      }
      req.url = url;
    }
    const request = new InboundRequest(req, normalized.path, query, deps.trustedProxies);
    (req as Carrier)[REQUEST_VIEW] = request;
    const exchange = beginServerExchange(deps.telemetry, request, deps.destination, res);
    const snapshot = deps.snapshot();
    const layers = snapshot ? deps.layers(snapshot) : [];
    if (layers.length === 0) {
      this.admit(request, res, exchange, handlers);
      return;
    }
    runLayers(layers, request, (reply, error) => {
      if (error !== undefined) {
        // A layer that cannot decide (a bug, a provider that threw) fails closed.
        this.answer(
          exchange,
          { status: 500, headers: { 'content-type': 'text/plain' }, body: 'inbound policy evaluation failed', reason: 'bad_request', flags: 0 },
          handlers,
        );
        return;
      }
      if (reply) this.answer(exchange, reply, handlers);
      else this.admit(request, res, exchange, handlers);
    });
  }

  private answer(exchange: ServerExchange | undefined, reply: InboundReply, handlers: InboundHandlers): void {
    exchange?.answered(reply);
    this.deps.answered(reply);
    handlers.reply(reply);
  }

  private admit(request: InboundRequest, res: NodeResponse, exchange: ServerExchange | undefined, handlers: InboundHandlers): void {
    const extra = request.responseHeaders;
    if (extra) for (const [name, value] of Object.entries(extra)) res.setHeader(name, value);
    const deadline = deadlineOf(request, this.deps.timeoutMs);
    const context = exchange?.context;
    const telemetry = this.deps.telemetry;
    const run = context !== undefined && telemetry ? () => telemetry.api.context.with(context, handlers.proceed) : handlers.proceed;
    if (deadline !== undefined) runWithDeadline(deadline, run);
    else run();
  }
}

export type { IncomingMessage };
