import type { Dispatcher } from 'undici';
import { toRawHeaders } from './raw-headers.js';

/** A controller for responses the mesh makes itself (no upstream to pause or abort). */
export class LocalController implements Dispatcher.DispatchController {
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
 * `onRequestStart` was called): the route timeout's 504, for one.
 */
export function deliverLocalResponse(
  handler: Dispatcher.DispatchHandler,
  controller: LocalController,
  status: number,
  body: string,
  headers: Record<string, string | string[]>,
  statusMessage = '',
): void {
  const payload = Buffer.from(body);
  const responseHeaders: Record<string, string | string[]> = {
    'content-type': 'text/plain',
    'content-length': String(payload.length),
    ...headers,
  };
  try {
    controller.rawHeaders = toRawHeaders(responseHeaders);
    handler.onResponseStart?.(controller, status, responseHeaders, statusMessage);
    if (controller.aborted) return;
    if (payload.length > 0) handler.onResponseData?.(controller, payload);
    if (controller.aborted) return;
    controller.rawTrailers = [];
    handler.onResponseEnd?.(controller, {});
  } catch (error) {
    handler.onResponseError?.(controller, error instanceof Error ? error : new Error(String(error)));
  }
}

/**
 * Answers a request without the network, the way Envoy answers locally (no route, no healthy
 * upstream, fault abort, direct response, redirect): a whole response delivered to the handler.
 */
export function sendLocalReply(
  handler: Dispatcher.DispatchHandler,
  status: number,
  body: string,
  headers: Record<string, string | string[]> = {},
): void {
  const controller = new LocalController();
  try {
    handler.onRequestStart?.(controller, {});
  } catch (error) {
    handler.onResponseError?.(controller, error instanceof Error ? error : new Error(String(error)));
    return;
  }
  if (controller.aborted) return;
  deliverLocalResponse(handler, controller, status, body, headers);
}

/** Delivers an error to the handler (the caller sees a rejected request). */
export function sendLocalError(handler: Dispatcher.DispatchHandler, error: Error): void {
  const controller = new LocalController();
  handler.onRequestStart?.(controller, {});
  if (!controller.aborted) handler.onResponseError?.(controller, error);
}
