import { status } from '@grpc/grpc-js';
import type { Server, ServerUnaryCall, ServerWritableStream, ServiceDefinition, sendUnaryData } from '@grpc/grpc-js';
import type { GrpcCapable, GrpcMeshCore } from './mesh-core.js';

/** `grpc.health.v1.HealthCheckResponse.ServingStatus`. */
export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

const STATUS_NUMBER: Readonly<Record<HealthStatus, number>> = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 };

/** A malformed request: answered INVALID_ARGUMENT, never a crash. */
class BadRequest extends Error {}

function readVarint(buffer: Buffer, at: number): [value: number, next: number] {
  let value = 0;
  let shift = 0;
  for (let i = at; i < buffer.length && shift < 35; i++) {
    const byte = buffer[i]!;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [value, i + 1];
    shift += 7;
  }
  throw new BadRequest('a truncated varint');
}

/** `HealthCheckRequest { string service = 1; }`, read by hand: no protobuf runtime for one field. */
function decodeRequest(buffer: Buffer): string {
  let service = '';
  let at = 0;
  while (at < buffer.length) {
    const [key, next] = readVarint(buffer, at);
    at = next;
    const wire = key & 7;
    if (wire === 0) [, at] = readVarint(buffer, at);
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const [length, start] = readVarint(buffer, at);
      at = start + length;
      if (at > buffer.length) throw new BadRequest('a field longer than the message');
      if (key >>> 3 === 1) service = buffer.toString('utf8', start, at);
    } else throw new BadRequest(`wire type ${wire}`);
    if (at > buffer.length) throw new BadRequest('a field longer than the message');
  }
  return service;
}

/** `HealthCheckResponse { ServingStatus status = 1; }`. */
function encodeResponse(value: HealthStatus): Buffer {
  const n = STATUS_NUMBER[value];
  return n === 0 ? Buffer.alloc(0) : Buffer.from([0x08, n]);
}

const identity = (buffer: Buffer): Buffer => buffer;

/** `grpc.health.v1.Health`, with the messages as raw bytes (encoded here). */
const HEALTH_SERVICE = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  watch: {
    path: '/grpc.health.v1.Health/Watch',
    requestStream: false,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} as const satisfies ServiceDefinition;

export interface MeshHealthOptions {
  /** Service names (`package.Service`) answered besides `""` (the whole server); others are unknown. */
  readonly services?: readonly string[];
}

/** The health service added to a server: set a service's own status on top of the mesh's readiness. */
export interface MeshHealth {
  /** Marks `service` (one of `options.services`, or `""`) serving or not; the mesh's readiness still applies. */
  setServing(service: string, serving: boolean): void;
  /** What Check answers for `service` now. */
  status(service: string): HealthStatus;
}

class HealthState implements MeshHealth {
  private readonly own = new Map<string, boolean>();
  private readonly watchers = new Set<() => void>();
  private closing = false;

  constructor(
    private readonly core: GrpcMeshCore,
    services: readonly string[],
  ) {
    for (const s of ['', ...services]) this.own.set(s, true);
    core.onClosing(() => {
      this.closing = true;
      this.changed();
    });
    // The first certificate of a mesh whose source had none yet makes it ready.
    core.certificates()?.on('rotated', () => this.changed());
  }

  /**
   * Ready while the mesh runs and, when it has a certificate source, holds a valid certificate
   * (a server with mesh mTLS cannot complete a handshake without one).
   */
  private meshReady(): boolean {
    if (this.closing || this.core.isClosed()) return false;
    const certificates = this.core.certificates();
    return certificates === undefined || certificates.current !== undefined;
  }

  status(service: string): HealthStatus {
    const own = this.own.get(service);
    if (own === undefined) return 'SERVICE_UNKNOWN';
    return own && this.meshReady() ? 'SERVING' : 'NOT_SERVING';
  }

  setServing(service: string, serving: boolean): void {
    if (!this.own.has(service))
      throw new RangeError(`grpc.health.v1: unknown service ${JSON.stringify(service)}; list it in addMeshHealthService's options.services`);
    this.own.set(service, serving);
    this.changed();
  }

  watch(listener: () => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  private changed(): void {
    for (const listener of this.watchers) listener();
  }
}

/**
 * Adds `grpc.health.v1.Health` (Check and Watch) to `server`, reflecting the mesh's readiness:
 * SERVING while the mesh runs (with a valid workload certificate, when it has a certificate
 * source); NOT_SERVING once `mesh.close()` starts, so that balancers and probes stop sending
 * before the drain. Unknown services: Check answers NOT_FOUND, Watch SERVICE_UNKNOWN (the spec).
 */
export function addMeshHealthService(server: Server, mesh: GrpcCapable, options: MeshHealthOptions = {}): MeshHealth {
  const state = new HealthState(mesh.grpcCore(), options.services ?? []);
  server.addService(HEALTH_SERVICE, {
    check: (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => {
      let service: string;
      try {
        service = decodeRequest(call.request);
      } catch (error) {
        callback({ code: status.INVALID_ARGUMENT, details: `grpc.health.v1.HealthCheckRequest does not parse: ${(error as Error).message}` });
        return;
      }
      const now = state.status(service);
      if (now === 'SERVICE_UNKNOWN') callback({ code: status.NOT_FOUND, details: `unknown service ${JSON.stringify(service)}` });
      else callback(null, encodeResponse(now));
    },
    watch: (call: ServerWritableStream<Buffer, Buffer>) => {
      let service: string;
      try {
        service = decodeRequest(call.request);
      } catch (error) {
        call.emit('error', { code: status.INVALID_ARGUMENT, details: `grpc.health.v1.HealthCheckRequest does not parse: ${(error as Error).message}` });
        return;
      }
      let last: HealthStatus | undefined;
      const send = (): void => {
        const now = state.status(service);
        if (now === last) return;
        last = now;
        call.write(encodeResponse(now));
      };
      const stop = state.watch(send);
      call.once('cancelled', stop);
      call.once('close', stop);
      send();
    },
  });
  return state;
}
