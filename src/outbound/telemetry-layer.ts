import type { MeshTelemetry } from '../telemetry/mesh-telemetry.js';
import type { OutboundCall } from './call.js';
import type { Layer } from './layer.js';

/**
 * Starts recording a call (when anything is recorded): the recorder wraps the caller's handler to
 * see how the call ends, and is the call's observer for everything the layers below report.
 */
export class TelemetryLayer implements Layer {
  constructor(
    private readonly next: Layer,
    private readonly telemetry: MeshTelemetry,
  ) {}

  handle(call: OutboundCall): void {
    const recorder = this.telemetry.begin(call.handler, call.request.method, call.origin, call.serviceHost, call.request.path);
    if (recorder) {
      // Only Istio's request size needs it; reading a header parses them all.
      if (recorder.mesh.istioRecording) recorder.requestBytes = bodyBytes(call.request.body, call.headers.get('content-length'));
      call.handler = recorder;
      call.observer = recorder;
    }
    this.next.handle(call);
  }
}

/** The request body's size for Istio's `istio_request_bytes`: known lengths, else Content-Length. */
function bodyBytes(body: unknown, contentLength: string | undefined): number {
  if (typeof body === 'string') return Buffer.byteLength(body);
  if (body instanceof Uint8Array) return body.byteLength;
  const n = contentLength === undefined ? 0 : Number(contentLength);
  return Number.isFinite(n) && n > 0 ? n : 0;
}
