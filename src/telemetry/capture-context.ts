import type { Context, Span } from '@opentelemetry/api';

/** The span key of `@opentelemetry/api` (`createContextKey` is `Symbol.for`, shared by all copies). */
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');

/**
 * A context that behaves as `base` and remembers the first span set on it. An attempt is
 * dispatched with it active: instrumentation-undici starts its span for the attempt and calls
 * `trace.setSpan(context.active(), span)` to inject trace context, which hands the span to us, so
 * the mesh can add its attributes to that span instead of starting a second one.
 */
export class CaptureContext implements Context {
  span: Span | undefined;

  constructor(private readonly base: Context) {}

  getValue(key: symbol): unknown {
    return this.base.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    if (key === SPAN_KEY && this.span === undefined) this.span = value as Span;
    return this.base.setValue(key, value);
  }

  deleteValue(key: symbol): Context {
    return this.base.deleteValue(key);
  }
}
