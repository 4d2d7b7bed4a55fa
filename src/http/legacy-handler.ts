import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { errors } from 'undici';
import { toRawHeaders } from '../outbound/raw-headers.js';

type RawList = Buffer[] | string[];

/**
 * The handler shape of undici 6 and 7 (`onConnect`, `onHeaders`, `onData`, `onComplete`,
 * `onError`). Node's built-in `fetch` bundles undici 7 and calls a dispatcher given as
 * `fetch(url, { dispatcher })` with one of these; undici 8, which the mesh's pools run on, accepts
 * only the new shape.
 */
export interface LegacyDispatchHandler {
  onConnect?(abort: (reason?: Error) => void, context?: unknown): void;
  onHeaders?(statusCode: number, headers: RawList, resume: () => void, statusText: string): boolean | void;
  onData?(chunk: Buffer): boolean | void;
  onComplete?(trailers: RawList | null): void;
  onError?(error: Error): void;
  onUpgrade?(statusCode: number, headers: RawList | null, socket: Duplex): void;
  onResponseStarted?(): void;
}

/** True for a handler written for undici ≤ 7 (no `onRequestStart`). */
export function isLegacyHandler(handler: object): handler is LegacyDispatchHandler {
  const h = handler as Dispatcher.DispatchHandler & LegacyDispatchHandler;
  return typeof h.onRequestStart !== 'function' && (typeof h.onHeaders === 'function' || typeof h.onConnect === 'function' || typeof h.onError === 'function');
}

function rawOf(raw: unknown, headers: IncomingHttpHeaders | undefined): RawList {
  return Array.isArray(raw) ? (raw as RawList) : toRawHeaders((raw as IncomingHttpHeaders | null | undefined) ?? headers ?? {});
}

/**
 * Presents a legacy handler as an undici 8 one: the calls map one to one, raw header lists come
 * from the controller (what undici 7's fetch reads), and a `false` from `onHeaders`/`onData`
 * pauses the stream until the handler calls `resume`.
 */
export class LegacyHandlerAdapter implements Dispatcher.DispatchHandler {
  constructor(private readonly legacy: LegacyDispatchHandler) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.legacy.onConnect?.((reason) => controller.abort(reason ?? new errors.RequestAbortedError()), context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.legacy.onUpgrade?.(statusCode, rawOf(controller.rawHeaders, headers), socket);
  }

  onResponseStarted(): void {
    this.legacy.onResponseStarted?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    const raw = rawOf(controller.rawHeaders, headers);
    if (this.legacy.onHeaders?.(statusCode, raw, () => controller.resume(), statusMessage ?? '') === false) controller.pause();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.legacy.onData?.(chunk) === false) controller.pause();
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.legacy.onComplete?.(rawOf(controller.rawTrailers, trailers));
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (!this.legacy.onError) throw error;
    this.legacy.onError(error);
  }
}
