import type * as OtelApiModule from '@opentelemetry/api';

/** The `@opentelemetry/api` module, as loaded at run time. */
export type OtelApi = typeof OtelApiModule;

/**
 * Loads `@opentelemetry/api` when the application has it (an optional peer): undefined when it is
 * not installed, and the mesh then has no telemetry at all. The module's globals are shared by
 * every copy of it, so whatever SDK the application registered is the one found here.
 */
export async function loadOtelApi(): Promise<OtelApi | undefined> {
  try {
    const api = (await import('@opentelemetry/api')) as OtelApi & { default?: OtelApi };
    // The CJS build seen through ESM interop may put the API under `default`.
    return typeof api.trace?.getTracer === 'function' ? api : api.default;
  } catch {
    return undefined;
  }
}
