import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestController, ResponseHandler } from '../request-protocol.js';
import type { MeshClosedError } from '../errors.js';
import { isInvalidArgument } from '../resilience/outcome.js';
import { invalidRequest } from './caller-errors.js';
import type { InFlight, InFlightItem } from './in-flight.js';

/**
 * A request to a host no configuration covers, sent as is through the pass-through agent: its
 * events go to the caller's handler unchanged, except that undici's refusal of the request as
 * given becomes the mesh's InvalidRequestError, as for any request; and it is listed in flight
 * until it ends, so that close() drains it like the others.
 */
export class PassthroughRequest implements InFlightItem, ResponseHandler {
  prevLive: InFlightItem | undefined = undefined;
  nextLive: InFlightItem | undefined = undefined;
  listed = false;
  private started = false;
  private controller: RequestController | undefined;
  /** Set when close() cut the request: the caller gets it whatever undici reports. */
  private closedError: MeshClosedError | undefined;

  constructor(
    private readonly inner: ResponseHandler,
    private readonly live: InFlight,
  ) {
    live.add(this);
  }

  stopRetrying(): void {
    // Nothing to stop: a pass-through request is never retried.
  }

  abortForClose(error: MeshClosedError): void {
    this.closedError = error;
    // Not started yet: the agent, destroyed next, fails it.
    this.controller?.abort(error);
  }

  onRequestStart(controller: RequestController, context: unknown): void {
    this.started = true;
    this.controller = controller;
    this.inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.live.remove(this);
    this.inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStarted(): void {
    (this.inner as { onResponseStarted?: () => void }).onResponseStarted?.();
  }

  onResponseStart(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: RequestController, chunk: Buffer): void {
    this.inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: RequestController, trailers: IncomingHttpHeaders): void {
    this.live.remove(this);
    this.inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: RequestController, error: Error): void {
    this.live.remove(this);
    const reported = this.closedError ?? (!this.started && isInvalidArgument(error) ? invalidRequest(error) : error);
    this.inner.onResponseError?.(controller, reported);
  }
}
