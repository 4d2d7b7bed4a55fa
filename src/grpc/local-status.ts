import { Metadata } from '@grpc/grpc-js';
import type { StatusObject } from '@grpc/grpc-js';
import type { IncomingHttpHeaders } from 'node:http';
import { MeshError } from '../errors.js';
import { RESPONSE_FLAGS_HEADER } from '../telemetry/response-flags.js';
import { GrpcCode, httpToGrpcStatus } from './grpc-status.js';

/** Metadata key of the mesh's error code on a call the mesh failed itself. */
export const ERROR_CODE_KEY = 'x-sidecarless-error-code';

/** A status the mesh answers a call with itself; `error`'s code goes in the metadata. */
export function localStatus(code: number, details: string, error?: MeshError): StatusObject {
  const metadata = new Metadata();
  if (error) metadata.set(ERROR_CODE_KEY, error.code);
  return { code, details, metadata };
}

/** A call the mesh failed: a MeshError is UNAVAILABLE with its code (in the details and the metadata), anything else INTERNAL. */
export function errorStatus(error: unknown): StatusObject {
  if (error instanceof MeshError) return localStatus(GrpcCode.UNAVAILABLE, `${error.code}: ${error.message}`, error);
  return localStatus(GrpcCode.INTERNAL, error instanceof Error ? error.message : String(error));
}

/** What a local reply's headers are on the wire, not metadata: HTTP's framing, the status itself, the mesh's own flags. */
function isReplyFraming(name: string): boolean {
  return name === 'content-type' || name === 'content-length' || name === 'grpc-status' || name === 'grpc-message' || name === RESPONSE_FLAGS_HEADER;
}

function addMetadata(metadata: Metadata, name: string, value: string): void {
  // A `-bin` header carries base64 on the wire; grpc-js takes the bytes and encodes them again.
  const written = name.endsWith('-bin') ? Buffer.from(value, 'base64') : value;
  try {
    metadata.add(name, written);
  } catch {
    // A name or value grpc-js cannot carry is left out: the answer itself still stands.
  }
}

/** The call the mesh answers itself, for the messages of the answers gRPC words its own way. */
export interface LocallyAnswered {
  readonly path: string;
  readonly serviceHost: string;
}

/**
 * A reply the outbound layers made for a gRPC call (src/outbound/local-reply.ts), as the caller
 * sees it, the way Envoy answers a gRPC request locally: the status in `grpc-status` /
 * `grpc-message` when the layer wrote them (fault abort with `grpcStatus`, a rate limit), else
 * `httpToGrpcStatus` of the HTTP status with the body as details; the other headers as metadata.
 * Two answers keep their gRPC wording: no route (UNIMPLEMENTED, naming the method and service)
 * and a redirect, which a gRPC call cannot follow (UNKNOWN).
 */
export function replyStatus(call: LocallyAnswered, status: number, headers: IncomingHttpHeaders, body: string): StatusObject {
  const code = headers['grpc-status'];
  if (code === undefined) {
    if (status >= 300 && status <= 399 && headers.location !== undefined) {
      return localStatus(GrpcCode.UNKNOWN, `the route for ${call.path} on ${call.serviceHost} redirects, which a gRPC call cannot follow`);
    }
    // Envoy's NR (404), as gRPC sees it.
    if (status === 404 && headers[RESPONSE_FLAGS_HEADER] === 'NR') {
      return localStatus(GrpcCode.UNIMPLEMENTED, `route not found for ${call.path} on ${call.serviceHost}`);
    }
  }
  const metadata = new Metadata();
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isReplyFraming(name)) continue;
    if (Array.isArray(value)) for (const v of value) addMetadata(metadata, name, v);
    else addMetadata(metadata, name, String(value));
  }
  if (code === undefined) return { code: httpToGrpcStatus(status), details: body, metadata };
  const n = Number(code);
  const message = headers['grpc-message'];
  return { code: Number.isInteger(n) && n >= 0 ? n : GrpcCode.UNKNOWN, details: message === undefined ? '' : String(message), metadata };
}
