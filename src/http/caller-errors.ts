import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { InvalidRequestError } from '../errors.js';
import { isInvalidArgument } from '../resilience/outcome.js';

/** The error a caller gets for a request undici refused as given (`cause`: undici's error). */
export function invalidRequest(cause: Error): InvalidRequestError {
  return new InvalidRequestError(`the request cannot be sent as given: ${cause.message}`, { cause });
}

/**
 * Hands a pass-through request's events to the caller's handler, turning undici's refusal of the
 * request as given (before it started) into the mesh's InvalidRequestError, as for any request.
 */
export class CallerErrorHandler implements Dispatcher.DispatchHandler {
  private started = false;

  constructor(private readonly inner: Dispatcher.DispatchHandler) {}

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.started = true;
    this.inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStarted(): void {
    (this.inner as { onResponseStarted?: () => void }).onResponseStarted?.();
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.inner.onResponseError?.(controller, !this.started && isInvalidArgument(error) ? invalidRequest(error) : error);
  }
}
