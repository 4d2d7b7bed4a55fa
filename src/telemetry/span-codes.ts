import { classifyFailure } from '../resilience/outcome.js';

/** `SpanStatusCode.ERROR` and `SpanKind` values of the API, as numbers: only types are imported from it. */
export const SPAN_STATUS_ERROR = 2;
export const SPAN_KIND_INTERNAL = 0;
export const SPAN_KIND_CLIENT = 2;

/** `error.type` for a transport error: `timeout`, else its code (ECONNREFUSED...), else its class. */
export function errorType(error: Error): string {
  const code = (error as { code?: unknown }).code;
  if (code === 'ERR_MESH_DEADLINE_EXCEEDED' || classifyFailure(error) === 'timeout') return 'timeout';
  if (typeof code === 'string' && code !== '') return code;
  return error.name && error.name !== 'Error' ? error.name : error.constructor?.name || '_OTHER';
}
