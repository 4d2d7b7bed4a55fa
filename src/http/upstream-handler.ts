import type { IncomingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Host } from '../balancer/index.js';
import { onFinish, onStart } from '../balancer/index.js';
import type { Clock } from '../clock.js';
import type { HeaderOps } from '../routing/route-actions.js';
import { applyHeaderOps } from '../routing/route-actions.js';
import { RouteTimeoutError } from './errors.js';

/**
 * Sits between undici's connection pool and the caller's handler for one upstream attempt: feeds
 * the outcome back to the balancer (in-flight count, latency), applies response header rules,
 * and enforces the route timeout by aborting the attempt (which frees its connection).
 */
export class UpstreamHandler implements Dispatcher.DispatchHandler {
  private readonly started: number;
  private timer: NodeJS.Timeout | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private responded = false;
  private done = false;

  constructor(
    private readonly inner: Dispatcher.DispatchHandler,
    private readonly host: Host,
    private readonly clock: Clock,
    private readonly responseHeaders: HeaderOps | undefined,
    private readonly timeoutMs: number,
  ) {
    this.started = clock.now();
    onStart(host);
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.controller = controller;
    if (this.timeoutMs > 0) {
      this.timer = setTimeout(() => this.onTimeout(), this.timeoutMs);
      this.timer.unref?.();
    }
    this.inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, socket: Duplex): void {
    this.finish(true);
    this.inner.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.responded = true;
    this.status = statusCode;
    if (this.responseHeaders) applyHeaderOps(headers as Record<string, string | string[]>, this.responseHeaders);
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  private status = 0;

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.inner.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.finish(this.status < 500);
    this.inner.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Dispatcher.DispatchController, error: Error): void {
    this.finish(false);
    if (error instanceof RouteTimeoutError && !this.responded) {
      // As Envoy: a 504 the caller can read, not a transport error.
      const body = Buffer.from('upstream request timeout');
      const headers = { 'content-type': 'text/plain', 'content-length': String(body.length) };
      const local = { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
      this.inner.onResponseStart?.(local, 504, headers, 'Gateway Timeout');
      this.inner.onResponseData?.(local, body);
      this.inner.onResponseEnd?.(local, {});
      return;
    }
    this.inner.onResponseError?.(controller, error);
  }

  private onTimeout(): void {
    if (this.done || !this.controller) return;
    // Envoy answers 504 "upstream request timeout" when no response has started; once it has,
    // the stream is reset. undici surfaces both as an error on the caller's side here.
    this.controller.abort(new RouteTimeoutError(this.timeoutMs, this.responded));
  }

  private finish(ok: boolean): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    onFinish(this.host, this.clock.now() - this.started, ok, this.clock.now());
  }
}
