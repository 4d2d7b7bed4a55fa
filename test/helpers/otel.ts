import { context, metrics, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { DataPoint, Histogram, MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';

/** A metric reader the test collects from when it wants (no timer). */
class CollectingReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * The real OpenTelemetry SDK registered globally, as an application registers it, with in-memory
 * exporters: spans are read from `spans()`, metrics collected by `metric(name)`.
 */
export class OtelHarness {
  readonly exporter: InMemorySpanExporter;
  readonly tracerProvider: TracerProvider;
  readonly reader: CollectingReader;
  readonly meterProvider: MeterProvider;
  private readonly contextManager = new AsyncLocalStorageContextManager();

  constructor(options: { readonly tracing?: boolean; readonly metrics?: boolean } = {}) {
    this.exporter = new InMemorySpanExporter();
    this.tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: this.exporter })] });
    this.reader = new CollectingReader();
    this.meterProvider = new MeterProvider({ readers: [this.reader] });
    context.setGlobalContextManager(this.contextManager.enable());
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    if (options.tracing !== false) trace.setGlobalTracerProvider(this.tracerProvider);
    if (options.metrics !== false) metrics.setGlobalMeterProvider(this.meterProvider);
  }

  /** Client spans ended so far, oldest first. */
  spans(): ReadableSpan[] {
    return this.exporter.getFinishedSpans();
  }

  async collect(): Promise<ResourceMetrics> {
    const { resourceMetrics, errors } = await this.reader.collect();
    if (errors.length > 0) throw errors[0];
    return resourceMetrics;
  }

  /** The data points of one metric, by name (empty when it was not recorded). */
  async metric(name: string): Promise<DataPoint<number | Histogram>[]> {
    const found: MetricData[] = [];
    for (const scope of (await this.collect()).scopeMetrics) for (const m of scope.metrics) if (m.descriptor.name === name) found.push(m);
    return found.flatMap((m) => m.dataPoints as DataPoint<number | Histogram>[]);
  }

  async shutdown(): Promise<void> {
    await this.tracerProvider.shutdown();
    await this.meterProvider.shutdown();
    trace.disable();
    metrics.disable();
    propagation.disable();
    context.disable();
  }
}
