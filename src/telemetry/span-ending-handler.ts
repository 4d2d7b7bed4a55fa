import type { IncomingHttpHeaders } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { RequestController, ResponseHandler } from '../request-protocol.js';
import { isCallerAbort } from '../resilience/outcome.js';
import * as sc from './semconv.js';
import { errorType, SPAN_STATUS_ERROR } from './span-codes.js';

/** Ends a mirrored copy's own span with the copy's outcome. */
export class SpanEndingHandler implements ResponseHandler {
  constructor(
    private readonly span: Span,
    private readonly inner: ResponseHandler,
  ) {}
  onRequestStart(controller: RequestController, context: unknown): void {
    this.inner.onRequestStart?.(controller, context);
  }
  onResponseStart(controller: RequestController, statusCode: number, headers: IncomingHttpHeaders, statusMessage?: string): void {
    this.span.setAttribute(sc.ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
    if (statusCode >= 400) {
      this.span.setAttribute(sc.ATTR_ERROR_TYPE, String(statusCode));
      this.span.setStatus({ code: SPAN_STATUS_ERROR });
    }
    this.inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }
  onResponseData(controller: RequestController, chunk: Buffer): void {
    this.inner.onResponseData?.(controller, chunk);
  }
  onResponseEnd(controller: RequestController, trailers: IncomingHttpHeaders): void {
    this.span.end();
    this.inner.onResponseEnd?.(controller, trailers);
  }
  onResponseError(controller: RequestController, error: Error): void {
    if (!isCallerAbort(error)) {
      this.span.setAttribute(sc.ATTR_ERROR_TYPE, errorType(error));
      this.span.setStatus({ code: SPAN_STATUS_ERROR, message: error.message });
    }
    this.span.end();
    this.inner.onResponseError?.(controller, error);
  }
}
