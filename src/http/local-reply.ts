import type { Dispatcher } from 'undici';

/** A controller for responses the mesh makes itself (no upstream to pause or abort). */
class LocalController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
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
 * Answers a request without the network, the way Envoy answers locally (no route, no healthy
 * upstream, fault abort, direct response, redirect): a whole response delivered to the handler.
 */
export function sendLocalReply(
  handler: Dispatcher.DispatchHandler,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  const controller = new LocalController();
  const payload = Buffer.from(body);
  const responseHeaders: Record<string, string> = {
    'content-type': 'text/plain',
    'content-length': String(payload.length),
    ...headers,
  };
  try {
    handler.onRequestStart?.(controller, {});
    if (controller.aborted) return;
    handler.onResponseStart?.(controller, status, responseHeaders, '');
    if (controller.aborted) return;
    if (payload.length > 0) handler.onResponseData?.(controller, payload);
    if (controller.aborted) return;
    handler.onResponseEnd?.(controller, {});
  } catch (error) {
    handler.onResponseError?.(controller, error instanceof Error ? error : new Error(String(error)));
  }
}

/** Delivers an error to the handler (the caller sees a rejected request). */
export function sendLocalError(handler: Dispatcher.DispatchHandler, error: Error): void {
  const controller = new LocalController();
  handler.onRequestStart?.(controller, {});
  if (!controller.aborted) handler.onResponseError?.(controller, error);
}
