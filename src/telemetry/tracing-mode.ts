/** Resolved tracing: nothing, our own spans, or enriching instrumentation-undici's. */
export const Tracing = { Off: 0, Own: 1, Enrich: 2 } as const;
export type Tracing = (typeof Tracing)[keyof typeof Tracing];
