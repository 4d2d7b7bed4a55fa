import type { InboundRequest } from './inbound-request.js';

/** Why the mesh answered an inbound request itself. */
export type InboundDenialReason = 'rbac' | 'jwt' | 'ext_authz' | 'rate_limit' | 'bad_request';

/** An answer the mesh gives instead of the application (Envoy's local reply). */
export interface InboundReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[]>>;
  readonly body: string;
  readonly reason: InboundDenialReason;
  /** Envoy's response flags for it (telemetry), 0 for none. */
  readonly flags: number;
  /** The policy or limit that decided, for people (`shop/deny-admin`). */
  readonly decidedBy?: string;
}

/** What a layer decides: nothing (go on), or the answer. A promise when it must wait (JWKS, Redis, ext authz). */
export type LayerOutcome = InboundReply | undefined | Promise<InboundReply | undefined>;

/**
 * One concern of the inbound path (RequestAuthentication, AuthorizationPolicy, rate limit...):
 * it reads the request view and either lets the request on or answers it. Layers are built once
 * per configuration snapshot; `handle` only reads what was compiled.
 */
export interface InboundLayer {
  readonly name: string;
  handle(request: InboundRequest): LayerOutcome;
}

/** Runs layers in order, synchronously while they answer synchronously. */
export function runLayers(
  layers: readonly InboundLayer[],
  request: InboundRequest,
  done: (reply: InboundReply | undefined, error?: unknown) => void,
  from = 0,
): void {
  for (let i = from; i < layers.length; i++) {
    let outcome: LayerOutcome;
    try {
      outcome = layers[i]!.handle(request);
    } catch (error) {
      done(undefined, error);
      return;
    }
    if (outcome === undefined) continue;
    if (outcome instanceof Promise) {
      outcome.then(
        (reply) => (reply ? done(reply) : runLayers(layers, request, done, i + 1)),
        (error: unknown) => done(undefined, error),
      );
      return;
    }
    done(outcome);
    return;
  }
  done(undefined);
}
