import { Channel } from '@grpc/grpc-js';

type ChannelCall = ReturnType<Channel['createCall']>;
type Deadline = Parameters<Channel['createCall']>[1];
type ParentCall = Parameters<Channel['createCall']>[3];
type CallListener = Parameters<ChannelCall['start']>[1];
type CallMessageContext = Parameters<ChannelCall['sendMessageWithContext']>[0];

/** gRPC's 5-byte message prefix (compressed flag, length): part of the body Envoy counts. */
const FRAME_PREFIX = 5;

/** Bytes of one attempt on the wire, as Envoy counts a body: serialized messages plus their prefixes. */
export class WireBytes {
  sent = 0;
  received = 0;
}

/** What the mesh's interceptor asks of the next attempt's channel call. */
export interface AttemptHooks {
  /** The method path to send instead of the client's (a route's `rewrite`), else undefined. */
  readonly path: string | undefined;
  /** Counts the attempt's serialized messages, else undefined (nothing wraps the call). */
  readonly bytes: WireBytes | undefined;
}

/**
 * Hooks for the call the channel makes next. grpc-js's bottom interceptor makes the channel call
 * synchronously inside `nextCall`, with the client's method path from a closure the interceptor
 * cannot change; so the interceptor leaves its hooks here for exactly that one `createCall`.
 */
let nextHooks: AttemptHooks | undefined;
let consumed = false;

/**
 * Runs `make` (the interceptor's `nextCall`) with `hooks` applied to the channel call it makes.
 * False when the channel was not a mesh channel (the hooks were not applied).
 */
export function withAttemptHooks<T>(hooks: AttemptHooks, make: () => T): { readonly call: T; readonly applied: boolean } {
  nextHooks = hooks;
  consumed = false;
  try {
    const call = make();
    return { call, applied: consumed };
  } finally {
    nextHooks = undefined;
    consumed = false;
  }
}

/** A channel call whose serialized messages are counted, both ways. */
class CountingCall implements ChannelCall {
  constructor(
    private readonly call: ChannelCall,
    private readonly bytes: WireBytes,
  ) {}

  start(metadata: Parameters<ChannelCall['start']>[0], listener: CallListener): void {
    const bytes = this.bytes;
    this.call.start(metadata, {
      onReceiveMetadata: (m) => listener.onReceiveMetadata(m),
      onReceiveMessage: (message: Buffer) => {
        bytes.received += message.length + FRAME_PREFIX;
        listener.onReceiveMessage(message);
      },
      onReceiveStatus: (status) => listener.onReceiveStatus(status),
    });
  }

  sendMessageWithContext(context: CallMessageContext, message: Buffer): void {
    this.bytes.sent += message.length + FRAME_PREFIX;
    this.call.sendMessageWithContext(context, message);
  }

  cancelWithStatus(...args: Parameters<ChannelCall['cancelWithStatus']>): void {
    this.call.cancelWithStatus(...args);
  }
  getPeer(): string {
    return this.call.getPeer();
  }
  startRead(): void {
    this.call.startRead();
  }
  halfClose(): void {
    this.call.halfClose();
  }
  getCallNumber(): number {
    return this.call.getCallNumber();
  }
  setCredentials(...args: Parameters<ChannelCall['setCredentials']>): void {
    this.call.setCredentials(...args);
  }
  getAuthContext(): ReturnType<ChannelCall['getAuthContext']> {
    return this.call.getAuthContext();
  }
}

/** The channel `meshGrpcOptions` makes: grpc-js's own, applying the interceptor's hooks to the call it asks for. */
export class MeshChannel extends Channel {
  // Parameters written out, not `...args`: a rest array would be allocated for every call.
  override createCall(
    method: string,
    deadline: Deadline,
    host: string | null | undefined,
    parentCall: ParentCall,
    propagateFlags: number | null | undefined,
  ): ChannelCall {
    const hooks = nextHooks;
    if (hooks === undefined) return super.createCall(method, deadline, host, parentCall, propagateFlags);
    nextHooks = undefined;
    consumed = true;
    const call = super.createCall(hooks.path ?? method, deadline, host, parentCall, propagateFlags);
    return hooks.bytes ? new CountingCall(call, hooks.bytes) : call;
  }
}
