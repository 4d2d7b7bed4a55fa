import { X509Certificate } from 'node:crypto';
import { makeGenericClientConstructor, Metadata, Server, ServerCredentials } from '@grpc/grpc-js';
import type {
  ChannelOptions,
  Client,
  ClientDuplexStream,
  ClientReadableStream,
  ClientWritableStream,
  ServerDuplexStream,
  ServerInterceptor,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  sendUnaryData,
  ServiceError,
  credentials,
  status,
} from '@grpc/grpc-js';

/** JSON messages: no .proto file needed for a test service. */
const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value ?? null)),
  deserialize: (buffer: Buffer): unknown => (buffer.length === 0 ? null : JSON.parse(buffer.toString())),
};

function unary(path: string) {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  } as const;
}

function streaming(path: string, requestStream: boolean, responseStream: boolean) {
  return { ...unary(path), requestStream, responseStream } as const;
}

/**
 * `test.Stream`: `Collect` (client streaming: answers how many messages it got), `List` (server
 * streaming: `{ count }` messages), `Chat` (bidi: one answer per message); each message says which
 * pod sent it and the deadline it saw.
 */
export const STREAM_SERVICE = {
  collect: streaming('/test.Stream/Collect', true, false),
  list: streaming('/test.Stream/List', false, true),
  chat: streaming('/test.Stream/Chat', true, true),
};

export interface StreamReply {
  readonly pod: string;
  readonly index: number;
  readonly body: unknown;
  readonly deadlineMs: number | null;
}

export interface StreamClient extends Client {
  collect(
    metadata: Metadata,
    options: { deadline?: number | Date },
    callback: (error: ServiceError | null, reply?: StreamReply) => void,
  ): ClientWritableStream<unknown>;
  list(request: unknown, metadata: Metadata, options: { deadline?: number | Date }): ClientReadableStream<StreamReply>;
  chat(metadata: Metadata, options: { deadline?: number | Date }): ClientDuplexStream<unknown, StreamReply>;
}

export const StreamClient = makeGenericClientConstructor(STREAM_SERVICE, 'Stream') as unknown as new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
  options?: ChannelOptions,
) => StreamClient;

/** How a pod fails a streaming call: before it sends anything, or after its first message. */
export type StreamFailure = { readonly when: 'before' | 'after-first'; readonly code: status } | undefined;

function deadlineMsOf(call: { getDeadline(): number | Date }): number | null {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(at) ? at - Date.now() : null;
}

/** `test.Echo`: `Who` and `Other` answer which pod served them and what metadata it saw. */
export const ECHO_SERVICE = { who: unary('/test.Echo/Who'), other: unary('/test.Echo/Other') };

export interface EchoReply {
  readonly pod: string;
  readonly method: string;
  readonly metadata: Record<string, string>;
  /** Milliseconds to the deadline the pod received; null without one. */
  readonly deadlineMs: number | null;
  readonly body: unknown;
  /** The SPIFFE ID (else the subject CN) of the client certificate the pod verified; null over plaintext or without one. */
  readonly peer: string | null;
  /** Serial number of that client certificate. */
  readonly peerSerial: string | null;
}

export type EchoHandler = (call: ServerUnaryCall<unknown, EchoReply>, callback: sendUnaryData<EchoReply>, pod: string) => boolean | void;

export interface EchoClient extends Client {
  who(request: unknown, metadata: Metadata, options: { deadline?: number | Date }, callback: (error: ServiceError | null, reply?: EchoReply) => void): unknown;
  other(
    request: unknown,
    metadata: Metadata,
    options: { deadline?: number | Date },
    callback: (error: ServiceError | null, reply?: EchoReply) => void,
  ): unknown;
}

export const EchoClient = makeGenericClientConstructor(ECHO_SERVICE, 'Echo') as unknown as new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
  options?: ChannelOptions,
) => EchoClient;

/** A call's outcome: the reply, or the status code and details of the error. */
export type Outcome = { ok: true; reply: EchoReply } | { ok: false; code: number; details: string; metadata: Metadata };

export function callEcho(client: EchoClient, method: 'who' | 'other' = 'who', metadata: Record<string, string> = {}, deadline?: number): Promise<Outcome> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve) => {
    client[method]({}, md, deadline === undefined ? {} : { deadline }, (error, reply) => {
      if (error) resolve({ ok: false, code: error.code, details: error.details, metadata: error.metadata });
      else resolve({ ok: true, reply: reply! });
    });
  });
}

/** Real grpc-js servers, one per loopback address ("pod"), all on one port. */
export class GrpcPods {
  private readonly servers = new Map<string, Server>();
  port = 0;
  /** Takes over a call (return true) to fail it, delay it, etc. */
  behave: EchoHandler | undefined;
  /** Decides, per streaming call, whether the pod fails it. */
  streamFailure: ((pod: string, method: string) => StreamFailure) | undefined;
  /** Calls each pod received, by method path. */
  readonly received: { pod: string; method: string }[] = [];

  /** `credentials` per pod address (TLS pods); default plaintext. */
  static async start(
    addresses: readonly string[],
    interceptors: ServerInterceptor[] = [],
    credentials?: (address: string) => ServerCredentials,
  ): Promise<GrpcPods> {
    const pods = new GrpcPods();
    for (let attempt = 0; attempt < 20; attempt++) {
      try {
        for (const address of addresses) await pods.listen(address, interceptors, credentials?.(address) ?? ServerCredentials.createInsecure());
        return pods;
      } catch {
        await pods.close();
        pods.port = 0;
      }
    }
    throw new Error('no free port for the gRPC pods');
  }

  private async listen(address: string, interceptors: ServerInterceptor[], credentials: ServerCredentials): Promise<void> {
    const server = new Server({ interceptors });
    const handler =
      (method: string) =>
      (call: ServerUnaryCall<unknown, EchoReply>, callback: sendUnaryData<EchoReply>): void => {
        this.received.push({ pod: address, method });
        if (this.behave?.(call, callback, address)) return;
        const deadline = call.getDeadline();
        const at = deadline instanceof Date ? deadline.getTime() : deadline;
        const metadata: Record<string, string> = {};
        for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
        const raw = call.getAuthContext().sslPeerCertificate?.raw;
        const cert = raw ? new X509Certificate(raw) : undefined;
        const peer = cert ? (/URI:(spiffe:\/\/[^,]+)/.exec(cert.subjectAltName ?? '')?.[1] ?? /CN=([^\n]+)/.exec(cert.subject)?.[1] ?? null) : null;
        callback(null, {
          pod: address,
          method,
          metadata,
          deadlineMs: Number.isFinite(at) ? at - Date.now() : null,
          body: call.request,
          peer,
          peerSerial: cert?.serialNumber ?? null,
        });
      };
    server.addService(ECHO_SERVICE, { who: handler('/test.Echo/Who'), other: handler('/test.Echo/Other') });
    server.addService(STREAM_SERVICE, this.streamHandlers(address));
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(`${address}:${this.port}`, credentials, (error, bound) => (error ? reject(error) : resolve(bound)));
    });
    this.port = port;
    this.servers.set(address, server);
  }

  private streamHandlers(pod: string) {
    const error = (code: status, details: string): ServiceError => Object.assign(new Error(details), { code, details, metadata: new Metadata() });
    return {
      collect: (call: ServerReadableStream<unknown, StreamReply>, callback: sendUnaryData<StreamReply>): void => {
        this.received.push({ pod, method: '/test.Stream/Collect' });
        const failure = this.streamFailure?.(pod, '/test.Stream/Collect');
        if (failure) {
          callback(error(failure.code, 'pod failed the stream'), null);
          return;
        }
        const bodies: unknown[] = [];
        call.on('data', (m: unknown) => bodies.push(m));
        call.on('end', () => callback(null, { pod, index: bodies.length, body: bodies, deadlineMs: deadlineMsOf(call) }));
      },
      list: (call: ServerWritableStream<unknown, StreamReply>): void => {
        this.received.push({ pod, method: '/test.Stream/List' });
        const failure = this.streamFailure?.(pod, '/test.Stream/List');
        const count = (call.request as { count?: number } | null)?.count ?? 3;
        if (failure?.when === 'before') {
          call.emit('error', error(failure.code, 'pod failed the stream'));
          return;
        }
        for (let i = 0; i < count; i++) {
          call.write({ pod, index: i, body: null, deadlineMs: deadlineMsOf(call) });
          if (failure && i === 0) {
            call.emit('error', error(failure.code, 'pod failed the stream after a message'));
            return;
          }
        }
        call.end();
      },
      chat: (call: ServerDuplexStream<unknown, StreamReply>): void => {
        this.received.push({ pod, method: '/test.Stream/Chat' });
        let index = 0;
        call.on('data', (m: unknown) => call.write({ pod, index: index++, body: m, deadlineMs: deadlineMsOf(call) }));
        call.on('end', () => call.end());
      },
    };
  }

  /** Stops one pod at once: its connections are cut, new ones refused. */
  kill(address: string): void {
    this.servers.get(address)?.forceShutdown();
    this.servers.delete(address);
  }

  async close(): Promise<void> {
    for (const server of this.servers.values()) server.forceShutdown();
    this.servers.clear();
  }
}

export function fail(callback: sendUnaryData<EchoReply>, code: status, details: string): true {
  callback({ code, details, name: 'Error', message: details }, null);
  return true;
}

/** What a TLS pod saw of a client's ClientHello. */
export interface GrpcHello {
  readonly servername: string | undefined;
  readonly alpn: readonly string[];
}

export interface TlsPodOptions {
  readonly cert: string;
  readonly key: string;
  /** Roots client certificates are verified against. */
  readonly clientRoots?: string;
  /** Require a verified client certificate (mTLS). */
  readonly requireClientCertificate?: boolean;
}

/**
 * Server credentials of a TLS gRPC pod that record each ClientHello (SNI, ALPN offered), so a
 * test asserts at the server what the client sent; `h2` is chosen when offered, as grpc-js does.
 */
export class RecordingServerCredentials extends ServerCredentials {
  readonly hellos: GrpcHello[];

  constructor(options: TlsPodOptions) {
    const hellos: GrpcHello[] = [];
    const mutual = options.requireClientCertificate ?? false;
    super(
      {
        requestCert: mutual,
        rejectUnauthorized: mutual,
        ALPNCallback: ({ servername, protocols }) => {
          hellos.push({ servername, alpn: [...protocols] });
          return protocols.includes('h2') ? 'h2' : undefined;
        },
      },
      { cert: options.cert, key: options.key, ...(options.clientRoots ? { ca: options.clientRoots } : {}) },
    );
    this.hellos = hellos;
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}
