// OpenTelemetry for the inbound examples: the SDK registered globally, as an application does,
// printing one line per finished span so the trace across both services can be followed.
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

const KINDS = ['INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];

export function startTracing(service) {
  const exporter = {
    export(spans, done) {
      for (const s of spans) {
        const status = s.attributes['http.response.status_code'] ?? '';
        console.log(
          `[trace] ${service} ${KINDS[s.kind]} ${s.name} trace=${s.spanContext().traceId} span=${s.spanContext().spanId} parent=${s.parentSpanContext?.spanId ?? '-'} status=${status}`,
        );
      }
      done({ code: 0 });
    },
    shutdown: async () => undefined,
  };
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] }));
}
