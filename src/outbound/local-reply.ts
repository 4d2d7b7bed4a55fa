import type { RequestController, ResponseHandler } from '../request-protocol.js';
import { toRawHeaders } from './raw-headers.js';

/** A controller for responses the mesh makes itself (no upstream to pause or abort). */
export class LocalController implements RequestController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  /** undici's fetch reads response headers from here (see {@link toRawHeaders}). */
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | null = null;
  abort(reason: Error): void {
    this.aborted = true;
    this.reason = reason;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

/**
 * Delivers a whole response made by the mesh to a handler whose request has already started (its
 * `onRequestStart` was called): the route timeout's 504, for one. A status that is not a final
 * response status (1xx, or outside 200-599) would leave the caller waiting for the real response:
 * such a reply (a breaker fallback's, say) is answered 500 instead.
 */
export function deliverLocalResponse(
  handler: ResponseHandler,
  controller: LocalController,
  status: number,
  body: string,
  headers: Record<string, string | string[]>,
  statusMessage = '',
): void {
  if (!(status >= 200 && status <= 599 && Number.isInteger(status))) {
    body = `local reply status ${String(status)} is not a final response status (200-599)`;
    status = 500;
    headers = {};
    statusMessage = '';
  }
  const payload = Buffer.from(body);
  const responseHeaders: Record<string, string | string[]> = {
    'content-type': 'text/plain',
    'content-length': String(payload.length),
    ...headers,
  };
  try {
    controller.rawHeaders = toRawHeaders(responseHeaders);
    handler.onResponseStart?.(controller, status, responseHeaders, statusMessage);
    if (controller.aborted) return abandoned(handler, controller);
    if (payload.length > 0) handler.onResponseData?.(controller, payload);
    if (controller.aborted) return abandoned(handler, controller);
    controller.rawTrailers = [];
    handler.onResponseEnd?.(controller, {});
  } catch (error) {
    handler.onResponseError?.(controller, error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * Answers a request without the network, the way Envoy answers locally (no route, no healthy
 * upstream, fault abort, direct response, redirect): a whole response delivered to the handler,
 * on a later turn of the event loop, as a network reply would be. Settling at once would let a
 * loop of awaited requests to such a route run in one microtask queue and starve everything else.
 */
export function sendLocalReply(handler: ResponseHandler, status: number, body: string, headers: Record<string, string | string[]> = {}): void {
  setImmediate(replyNow, handler, status, body, headers);
}

function replyNow(handler: ResponseHandler, status: number, body: string, headers: Record<string, string | string[]>): void {
  const controller = new LocalController();
  try {
    handler.onRequestStart?.(controller, {});
  } catch (error) {
    handler.onResponseError?.(controller, error instanceof Error ? error : new Error(String(error)));
    return;
  }
  if (controller.aborted) return abandoned(handler, controller);
  deliverLocalResponse(handler, controller, status, body, headers);
}

/**
 * The caller aborted (its signal, or its handler called `abort`): like undici's own controllers,
 * the reason comes back through `onResponseError`, which is what settles the caller's promise.
 */
function abandoned(handler: ResponseHandler, controller: LocalController): void {
  handler.onResponseError?.(controller, controller.reason ?? new Error('request aborted'));
}

/** Delivers an error to the handler (the caller sees a rejected request), on a later turn as above. */
export function sendLocalError(handler: ResponseHandler, error: Error): void {
  setImmediate(failNow, handler, error);
}

function failNow(handler: ResponseHandler, error: Error): void {
  const controller = new LocalController();
  try {
    handler.onRequestStart?.(controller, {});
  } catch {
    // The error below is what the caller is to get.
  }
  handler.onResponseError?.(controller, controller.aborted ? (controller.reason ?? error) : error);
}
