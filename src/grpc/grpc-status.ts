/** gRPC status codes as numbers, so the core modules need nothing of grpc-js. */
export const GrpcCode = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const TO_HTTP: readonly number[] = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/**
 * Envoy's Grpc::Utility::grpcToHttpStatus: the HTTP status outlier detection is fed for a gRPC
 * status, so UNAVAILABLE counts as a gateway error (503) and DEADLINE_EXCEEDED as a timeout (504).
 */
export function grpcToHttpStatus(code: number): number {
  return TO_HTTP[code] ?? 500;
}

/** Envoy's Grpc::Utility::httpToGrpcStatus, for an HTTP fault abort on a gRPC call. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcCode.INTERNAL;
    case 401:
      return GrpcCode.UNAUTHENTICATED;
    case 403:
      return GrpcCode.PERMISSION_DENIED;
    case 404:
      return GrpcCode.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GrpcCode.UNAVAILABLE;
    default:
      return GrpcCode.UNKNOWN;
  }
}
