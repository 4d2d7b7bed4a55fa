import { Metadata } from '@grpc/grpc-js';
import type { InterceptingCall } from '@grpc/grpc-js';
import type { Interceptor, InterceptorOptions, InterceptingListener, NextCall, StatusObject } from '@grpc/grpc-js';
import type { Host } from '../balancer/host.js';
import { MeshClosedError } from '../errors.js';
import type { OverflowError } from '../resilience/errors.js';
import { retriableFailure, retriableGrpcStatus } from '../resilience/retry-on.js';
import { ResponseFlag } from '../telemetry/response-flags.js';
import type { RpcTelemetry } from '../telemetry/rpc-telemetry.js';
import type { Origin } from '../outbound/call.js';
import { NO_OBSERVER } from '../outbound/observer.js';
import { GrpcNoRouteError, GrpcUnsupportedRouteError } from './errors.js';
import { GrpcCode, grpcToHttpStatus } from './grpc-status.js';
import type { GrpcCallOwner } from './grpc-call.js';
import { GrpcCall } from './grpc-call.js';
import { epochOf } from './grpc-call-layer.js';
import type { GrpcStack } from './grpc-stack.js';
import { grpcStackOf } from './grpc-stack.js';
import { errorStatus, localStatus } from './local-status.js';
import type { GrpcMeshCore } from './mesh-core.js';
import type { MeshTarget } from './registry.js';
import { ATTEMPT_KEY, clientChannels, configInStart, handOver, registerAttempt, releaseAttempt, targetOf } from './registry.js';
import type { ClientChannels } from './registry.js';
import { applyMetadataOps } from './metadata-ops.js';
import type { AttemptOwner, CallInterface } from './call-attempt.js';
import { CallAttempt } from './call-attempt.js';
import type { EngineFlag } from '../outbound/attempts/attempt-engine.js';
import { AttemptEngine } from '../outbound/attempts/attempt-engine.js';
import { PerTryTimeoutError } from '../outbound/errors.js';
import type { AttemptHooks } from './mesh-channel.js';
import { WireBytes, withAttemptHooks } from './mesh-channel.js';

type MessageContext = Parameters<CallInterface['sendMessageWithContext']>[0];
interface Queued {
  readonly context: MessageContext;
  readonly message: unknown;
}

/** Messages kept for a retry; a longer client stream is sent once, never partly resent. */
const MAX_REPLAY_MESSAGES = 64;

const NO_LISTENER: Partial<InterceptingListener> = Object.freeze({});
/** The context of a message sent without one (`sendMessage`): read, never written, by grpc-js too. */
const NO_CONTEXT: MessageContext = Object.freeze({});
/** No messages: shared, never mutated (a unary call's one message gets an array of its own). */
const NONE: readonly Queued[] = Object.freeze([]);

/**
 * A call through the mesh. Its route is decided by the outbound layers HTTP requests pass
 * (src/outbound/stack.ts `grpcOutboundStack`: service, VirtualService route on the gRPC path and
 * metadata, fault, weighted destination, rate limits, cluster and TLS), carried by a
 * {@link GrpcCall}, the protocol side those layers ask; gRPC's own layer at the bottom
 * (grpc-call-layer.ts) decides the metadata, deadline and hash, then calls {@link begin}. Its
 * attempts' policy (retries with Istio's gRPC retryOn names, perTryTimeout, Envoy's back-off,
 * hedging, host choice, the cluster's limits) is the same {@link AttemptEngine} as HTTP's. This
 * side adds gRPC: the messages kept for a retry, the response held until it is known to be final,
 * which statuses are retriable, and the mesh's own statuses.
 */
class MeshCall extends AttemptEngine<CallAttempt> implements CallInterface, AttemptOwner, GrpcCallOwner {
  private listener: Partial<InterceptingListener> = NO_LISTENER;
  /** The call as the outbound layers carry it; set by start(). Once routed, also the engine's policy. */
  private call: GrpcCall | undefined = undefined;
  /** Messages sent so far, kept for a retry (flags only: their callbacks were answered). */
  private sent: readonly Queued[] = NONE;
  /**
   * Messages waiting for the current attempt (or the first one), handed over one at a time:
   * grpc-js takes a call's next message only once the previous one's callback ran.
   */
  private pending: readonly Queued[] = NONE;
  /** A message is in flight on the current attempt; `inflight` is its caller's callback. */
  private sending = false;
  private inflight: (() => void) | undefined;
  private replayable = true;
  private halfClosed = false;
  private readPending = false;
  /** The response reached the caller: no retry from here on. */
  private committed = false;
  private statusSent = false;
  /** The attempt the caller's messages go to (the latest sent, or the winner). */
  private attempt: CallAttempt | undefined;
  /** The call's spans and metrics; undefined when telemetry is off (then nothing of OTel is loaded). */
  private telemetry: RpcTelemetry | undefined;

  constructor(
    private readonly stack: GrpcStack,
    /** The client's `mesh:///` target as the layers read it; undefined when the channel has none. */
    private readonly origin: Origin | undefined,
    private readonly options: InterceptorOptions,
    private readonly nextCall: NextCall,
    /** The client's channels: whether a call's config is chosen inside its start. */
    private readonly channels: ClientChannels,
  ) {
    // The cluster and policy are the route's, set once the call is routed (see begin).
    super(undefined, stack.unrouted);
  }

  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    this.listener = listener ?? NO_LISTENER;
    const { core, layer, ctx } = this.stack;
    const origin = this.origin;
    const method = this.options.method_definition;
    // Here, in the caller's context: its active span is the parent of the call's spans.
    const telemetry = (this.telemetry = core.telemetry()?.beginRpc(method.path, origin?.hostname ?? '', origin?.port ?? 0));
    if (core.isClosed()) return this.answer(errorStatus(new MeshClosedError()), true);
    if (!origin) {
      const error = new GrpcNoRouteError(
        'the gRPC channel has no mesh:/// target; create the client with a mesh:///host:port address and meshGrpcOptions(mesh)',
      );
      return this.answer(errorStatus(error), true);
    }
    const call = new GrpcCall(this, ctx, origin, metadata, method.path, method.requestStream, telemetry ?? NO_OBSERVER, epochOf(this.options.deadline));
    this.call = call;
    try {
      layer.handle(call);
    } catch (error) {
      this.answer(errorStatus(error), true);
    }
  }

  // ---- what the layers decide (GrpcCallOwner) ----

  begin(call: GrpcCall): void {
    // Cancelled, or answered, while the layers decided.
    if (this.done) return;
    this.cluster = call.cluster;
    this.policy = call;
    // Every attempt is sent with the call's deadline and the route's authority: set once on the
    // options grpc-js made for this call (they are the call's own).
    const options = this.options;
    options.deadline = call.deadlineAt;
    // grpc-js sends a call's `host` option as its :authority.
    if (call.sentAuthority !== undefined) options.host = call.sentAuthority;
    this.sendAttempt(false, false);
  }

  /** The mesh answers the call itself (`later`: as a network answer would come, on a later turn). */
  answer(status: StatusObject, later: boolean): void {
    this.done = true;
    if (later) setImmediate(() => this.finish(status, undefined));
    else this.finish(status, undefined);
  }

  // ---- the engine's protocol side ----

  protected createAttempt(host: Host | undefined, retry: boolean): CallAttempt {
    return new CallAttempt(this, this.stack.core, this.cluster!, host!, this.origin!.hostname, retry);
  }

  protected transmit(attempt: CallAttempt): void {
    const routed = this.call!;
    if (routed.deadlineAt !== Infinity && Date.now() >= routed.deadlineAt) {
      // The deadline passed while a retry waited: nothing is sent.
      this.endAttempt(attempt, false, false);
      this.finish(localStatus(GrpcCode.DEADLINE_EXCEEDED, 'deadline exceeded'), undefined);
      return;
    }
    this.attempt = attempt;
    const first = this.attemptCount === 1;
    // A traced attempt writes its trace context into a copy of the caller's metadata.
    const telemetry = this.telemetry;
    const metadata = telemetry ? routed.metadata.clone() : routed.metadata;
    if (telemetry) attempt.span = telemetry.startAttempt(metadata, first ? routed.retry : undefined);
    const call = this.channelCall(attempt, this.options);
    if (!call) return;
    attempt.call = call;
    // The channel's config selector hands the attempt to the picker (registry.ts). A call that may
    // wait for its channel's config carries its id in the metadata instead: grpc-js copies the
    // metadata as the call starts (ResolvingCall.start), so without telemetry the id is on the
    // caller's object only meanwhile, and no copy of our own is made.
    const handed = configInStart(this.channels);
    if (handed) {
      handOver(attempt);
    } else {
      attempt.id = registerAttempt(attempt);
      metadata.set(ATTEMPT_KEY, attempt.id);
    }
    try {
      // The attempt is its call's listener: it hands each event to this call with itself.
      call.start(metadata, attempt);
    } finally {
      if (handed) handOver(undefined);
      else if (!telemetry) metadata.remove(ATTEMPT_KEY);
    }
    // The first attempt sends what the caller sent before it; a retry or hedge sends everything again.
    if (!first) this.pending = this.sent.slice();
    this.sending = false;
    this.pump(attempt);
    if (this.readPending) call.startRead();
  }

  protected abortAttempt(attempt: CallAttempt, reason: Error): void {
    this.detach(attempt);
    if (reason instanceof PerTryTimeoutError) {
      attempt.perTryTimedOut = true;
      attempt.call?.cancelWithStatus(GrpcCode.DEADLINE_EXCEEDED, reason.message);
    } else {
      attempt.call?.cancelWithStatus(GrpcCode.CANCELLED, 'attempt abandoned by the mesh');
    }
  }

  protected noHealthyUpstream(): void {
    this.telemetry?.answeredLocally('no-healthy-upstream', ResponseFlag.UH);
    this.answer(localStatus(GrpcCode.UNAVAILABLE, 'no healthy upstream'), true);
  }

  /** The cluster's connection-pool limits refused the attempt: Envoy's overflow answer, nothing sent. */
  protected overflowed(overflow: OverflowError): void {
    this.telemetry?.answeredLocally('overflow', ResponseFlag.UO);
    const status = localStatus(GrpcCode.UNAVAILABLE, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    status.metadata.set('x-envoy-overloaded', 'true');
    // Ours, as on HTTP: which DestinationRule limit refused it.
    status.metadata.set('x-sidecarless-overflow', `${overflow.limit}=${overflow.value}`);
    this.finish(status, undefined);
  }

  protected timedOut(error: PerTryTimeoutError): void {
    this.finish(localStatus(GrpcCode.DEADLINE_EXCEEDED, error.message), undefined);
  }

  protected attemptTimedOut(attempt: CallAttempt, error: PerTryTimeoutError): void {
    attempt.perTryTimedOut = true;
    this.telemetry?.flag(ResponseFlag.UT);
    this.telemetry?.attemptEnded(attempt.span, GrpcCode.DEADLINE_EXCEEDED, error.message);
  }

  protected closing(): boolean {
    return this.stack.core.isClosed();
  }

  protected canResend(): boolean {
    return this.replayable && !this.committed;
  }

  protected retrying(reason: string): void {
    this.telemetry?.retrying(reason === 'timeout' ? 'per-try-timeout' : reason);
  }

  protected hedging(): void {
    this.telemetry?.hedging();
  }

  protected flag(flag: EngineFlag): void {
    this.telemetry?.flag(ResponseFlag[flag]);
  }

  /** A hedge resends the whole request: only once the caller sent all of it, before any answer reached it. */
  protected override hedgeable(): boolean {
    return this.halfClosed && this.replayable && !this.committed;
  }

  // ---- the picker's reports (AttemptOwner) ----

  attemptStarted(attempt: CallAttempt): void {
    if (!attempt.started && !attempt.ended) this.markStarted(attempt);
    this.telemetry?.picked(attempt.span, attempt.host!);
  }

  attemptCallEnded(attempt: CallAttempt, host: Host, code: number): void {
    // The caller's cancel, a lost hedge, an attempt given up at its per-try timeout (reported then): nothing new of the pod.
    if (!attempt.callerCancelled && !attempt.abandoned) {
      // A response cut at its per-try timeout while streaming to the caller is a timeout of the pod.
      if (attempt.perTryTimedOut) this.cluster!.report(host, { status: 0, failure: 'timeout' });
      else this.cluster!.reportStatus(host, grpcToHttpStatus(code));
    }
    // A lost hedge's latency says nothing of its pod either.
    this.endAttempt(attempt, code === GrpcCode.OK, !attempt.abandoned);
  }

  /**
   * The attempt's call from the next interceptor (grpc-js's own, which makes the channel's call),
   * with the route's path rewrite and the byte count applied by the mesh's channel; undefined
   * (the call answered) when a rewrite could not be applied.
   */
  private channelCall(attempt: CallAttempt, options: InterceptorOptions): CallInterface | undefined {
    const path = this.call!.sentPath;
    if (this.telemetry?.mesh.istioRecording) attempt.bytes = new WireBytes();
    let call: CallInterface;
    let applied: boolean;
    try {
      if (path === undefined && attempt.bytes === undefined) return this.nextCall(options);
      const hooks: AttemptHooks = { path, bytes: attempt.bytes };
      ({ call, applied } = withAttemptHooks(hooks, () => this.nextCall(options)));
    } catch (error) {
      // grpc-js refuses new calls on a channel the caller closed ("Channel has been shut down"),
      // also a retry whose back-off timer fires afterwards: the call ends with that, no pod is blamed.
      this.unsent(attempt, localStatus(GrpcCode.UNAVAILABLE, error instanceof Error ? error.message : String(error)));
      return undefined;
    }
    if (applied || path === undefined) return call;
    // Not the mesh's channel under this interceptor: the call would go to the path the route rewrites.
    call.cancelWithStatus(GrpcCode.CANCELLED, 'not sent');
    this.unsent(
      attempt,
      errorStatus(
        new GrpcUnsupportedRouteError(
          `the route for ${this.options.method_definition.path} rewrites the path to ${path}, which only the channel of meshGrpcOptions(mesh) can send; the call was not sent`,
        ),
      ),
    );
    return undefined;
  }

  /** An attempt that could not be sent at all ends the call with `status`: nothing reached a pod. */
  private unsent(attempt: CallAttempt, status: StatusObject): void {
    attempt.noHost = true;
    this.detach(attempt);
    this.endAttempt(attempt, false, false);
    this.telemetry?.attemptEnded(attempt.span, status.code, status.details);
    this.finish(status, undefined);
  }

  /** Hands the attempt its next waiting message; half-closes it once none is left and the caller half-closed. */
  private pump(attempt: CallAttempt): void {
    const next = this.pending.length > 0 ? (this.pending as Queued[]).shift() : undefined;
    if (next !== undefined && !this.options.method_definition.requestStream) {
      // A unary or server-streaming call sends one message: nothing waits behind it.
      attempt.call!.sendMessageWithContext(next.context, next.message);
    } else if (next !== undefined) {
      this.sending = true;
      this.inflight = next.context.callback;
      attempt.onSent ??= () => this.messageSent(attempt);
      attempt.call!.sendMessageWithContext({ flags: next.context.flags, callback: attempt.onSent }, next.message);
    } else {
      this.sending = false;
    }
    if (this.pending.length === 0 && this.halfClosed && !attempt.halfClosed && attempt === this.attempt) {
      attempt.halfClosed = true;
      attempt.call!.halfClose();
    }
  }

  private messageSent(attempt: CallAttempt): void {
    if (attempt !== this.attempt) return;
    const callback = this.inflight;
    this.inflight = undefined;
    callback?.();
    if (attempt === this.attempt) this.pump(attempt);
  }

  /** The attempt is over for the call: out of the picker's registry; the caller's messages waiting for it are answered (a retry sends them again from `sent`). */
  private detach(attempt: CallAttempt): void {
    if (attempt.id !== '') releaseAttempt(attempt.id);
    if (attempt !== this.attempt) return;
    this.attempt = undefined;
    const inflight = this.inflight;
    const pending = this.pending;
    this.inflight = undefined;
    this.pending = NONE;
    this.sending = false;
    inflight?.();
    for (const m of pending) m.context.callback?.();
  }

  /** `attempt`'s response is the caller's (a hedge's lost): the others are cancelled. */
  private claim(attempt: CallAttempt): void {
    if (this.winner === attempt) return;
    this.win(attempt);
    this.attempt = attempt;
  }

  onMetadata(attempt: CallAttempt, metadata: Metadata): void {
    if (attempt.abandoned || this.statusSent) return;
    attempt.metadataReceived = true;
    const ops = this.call!.responseOps;
    if (ops.length > 0) applyMetadataOps(metadata, ops);
    // A streamed response's first headers win among hedges; a unary response's status does.
    if (this.options.method_definition.responseStream) this.claim(attempt);
    if (this.committed) this.listener.onReceiveMetadata?.(metadata);
    else attempt.heldMetadata = metadata;
  }

  onMessage(attempt: CallAttempt, message: unknown): void {
    if (attempt.abandoned || this.statusSent) return;
    this.readPending = false;
    if (!this.committed && !this.options.method_definition.responseStream) {
      // grpc-js hands a unary call its message (null when none came) just before the status.
      attempt.heldMessage = message;
      attempt.holdsMessage = true;
      return;
    }
    this.claim(attempt);
    this.commit(attempt);
    this.listener.onReceiveMessage?.(message);
  }

  /** The response reached the caller: no retry from here on. */
  private commit(attempt: CallAttempt): void {
    if (this.committed) return;
    this.committed = true;
    this.sent = NONE;
    const held = attempt.heldMetadata;
    attempt.heldMetadata = undefined;
    if (held) this.listener.onReceiveMetadata?.(held);
  }

  onStatus(attempt: CallAttempt, status: StatusObject): void {
    this.detach(attempt);
    this.endAttempt(attempt, status.code === GrpcCode.OK, attempt.started);
    const telemetry = this.telemetry;
    if (attempt.abandoned) {
      // A lost hedge, or cut at its per-try timeout (then the engine decided already and its span ended).
      if (!attempt.perTryTimedOut) telemetry?.attemptEnded(attempt.span, status.code, status.details);
      return;
    }
    // A trailers-only response (an error status with no headers before it) is the headers Envoy's rules apply to.
    const ops = this.call!.responseOps;
    if (attempt.podAnswered && !attempt.metadataReceived && ops.length > 0) applyMetadataOps(status.metadata, ops);
    if (telemetry) this.attemptTelemetry(telemetry, attempt, status);
    if (this.statusSent) return;
    if (!this.done && !this.committed && this.retriable(attempt, status)) {
      // A streamed response whose headers won but that failed before its first message: still retriable.
      if (this.winner === attempt) this.winner = undefined;
      const reason = attempt.connectFailure ? 'connect-failure' : attempt.perTryTimedOut ? 'timeout' : `grpc-status ${status.code}`;
      if (this.retryAfter(attempt, reason)) return;
    } else if (!this.done && attempt.connectFailure && this.inFlight() > 0) {
      // Never reached a pod; a hedge may still answer.
      return;
    }
    this.finish(status, attempt);
  }

  /** Envoy's flags for how the attempt ended, and its span. */
  private attemptTelemetry(telemetry: RpcTelemetry, attempt: CallAttempt, status: StatusObject): void {
    if (attempt.noHost) telemetry.flag(ResponseFlag.UH);
    else if (attempt.connectFailure) telemetry.flag(ResponseFlag.UF);
    else if (attempt.perTryTimedOut) telemetry.flag(ResponseFlag.UT);
    if (attempt.callerCancelled) telemetry.flag(ResponseFlag.DC);
    telemetry.attemptEnded(attempt.span, status.code, status.details);
  }

  /** Whether the status is one the route retries (the engine then decides whether a retry goes out). */
  private retriable(attempt: CallAttempt, status: StatusObject): boolean {
    const policy = this.policy.retry;
    if (!policy || !this.replayable || attempt.callerCancelled || attempt.noHost) return false;
    const bits = policy.retryOn;
    if (attempt.perTryTimedOut) return retriableFailure(bits, 'timeout', true);
    if (attempt.connectFailure) return retriableFailure(bits, 'connect-failure', false) || retriableGrpcStatus(bits, GrpcCode.UNAVAILABLE);
    return status.code !== GrpcCode.OK && retriableGrpcStatus(bits, status.code);
  }

  /** The caller gets `status`, from `from` (undefined: the mesh's own answer); every other attempt is cancelled. */
  private finish(status: StatusObject, from: CallAttempt | undefined): void {
    if (this.statusSent) return;
    this.statusSent = true;
    this.stopAttempts();
    this.abandonAllBut(from);
    if (from) {
      this.winner = from;
      const held = from.heldMetadata;
      from.heldMetadata = undefined;
      if (held) this.listener.onReceiveMetadata?.(held);
      if (from.holdsMessage) {
        const message = from.heldMessage;
        from.heldMessage = undefined;
        from.holdsMessage = false;
        this.listener.onReceiveMessage?.(message);
      }
    }
    const telemetry = this.telemetry;
    if (telemetry) {
      // Envoy's response_code: 200 for a status from a pod; the local reply's HTTP status otherwise.
      const podAnswered = from !== undefined && from.podAnswered;
      telemetry.finish(status.code, status.details, podAnswered ? 200 : grpcToHttpStatus(status.code), from?.bytes);
    }
    this.listener.onReceiveStatus?.(status);
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (this.statusSent) return;
    // Without a callback (a unary call's one message) the entry kept for a retry is the one sent.
    const queued: Queued = { context, message };
    if (this.replayable && !this.committed) {
      if (this.sent.length >= MAX_REPLAY_MESSAGES) {
        this.replayable = false;
        this.sent = NONE;
      } else {
        // A replay answers no callback: the caller's was answered by the first send.
        this.sent = append(this.sent, context.callback === undefined ? queued : { context: { flags: context.flags }, message });
      }
    }
    const attempt = this.attempt;
    if (attempt && !this.sending && this.pending.length === 0 && !this.options.method_definition.requestStream) {
      // A unary or server-streaming call's one message, its attempt running: straight to it.
      attempt.call!.sendMessageWithContext(context, message);
      return;
    }
    if (attempt || this.attemptCount === 0) {
      this.pending = append(this.pending, queued);
      if (attempt && !this.sending) this.pump(attempt);
      return;
    }
    // Between attempts: the next one sends it again from `sent`; if none comes, the call is ending.
    context.callback?.();
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext(NO_CONTEXT, message);
  }

  startRead(): void {
    this.readPending = true;
    // Every attempt still running reads: any of them may win.
    for (let a = this.firstAttempt; a; a = a.nextAttempt as CallAttempt | undefined) {
      if (!a.ended && !a.abandoned) a.call?.startRead();
    }
  }

  halfClose(): void {
    this.halfClosed = true;
    const attempt = this.attempt;
    // With messages still waiting, the attempt is half-closed after the last (see `pump`).
    if (attempt?.call && this.pending.length === 0 && !attempt.halfClosed) {
      attempt.halfClosed = true;
      attempt.call.halfClose();
    }
  }

  cancelWithStatus(code: number, details: string): void {
    if (this.statusSent) return;
    this.done = true;
    let running = false;
    for (let a = this.firstAttempt; a; a = a.nextAttempt as CallAttempt | undefined) {
      if (a.ended || a.abandoned || !a.call) continue;
      running = true;
      a.callerCancelled = true;
      a.call.cancelWithStatus(code, details);
    }
    // The first cancelled attempt's status answers the caller.
    if (running) return;
    this.stopAttempts();
    setImmediate(() => this.finish({ code, details, metadata: new Metadata() }, undefined));
  }

  getPeer(): string {
    return (this.winner ?? this.attempt)?.call?.getPeer() ?? '';
  }

  getAuthContext(): ReturnType<CallInterface['getAuthContext']> {
    return (this.winner ?? this.attempt)?.call?.getAuthContext() ?? null;
  }
}

/** `list` with `item` at its end: the shared empty list is never written to. */
function append(list: readonly Queued[], item: Queued): readonly Queued[] {
  if (list === NONE) return [item];
  (list as Queued[]).push(item);
  return list;
}

/** The interceptor of one client made with `meshGrpcOptions`: it finds its target through the channel's resolver. */
export function meshClientInterceptor(core: GrpcMeshCore, client: number): Interceptor {
  const stack = grpcStackOf(core);
  const channels = clientChannels(client);
  // The client's target as the layers read it, made again only if the resolver records another.
  let target: MeshTarget | undefined;
  let origin: Origin | undefined;
  return (options, nextCall) => {
    const now = targetOf(client);
    if (now !== target) {
      target = now;
      origin = now && { scheme: 'http', hostname: now.host, port: now.port, authority: `${now.host}:${now.port}`, servername: undefined };
    }
    // The call itself, not wrapped in an InterceptingCall: grpc-js's client and the interceptors
    // above use only the methods of InterceptingCallInterface, all of which MeshCall has, and the
    // wrapper would cost each call its listener binds and per-message closures (docs/decisions.md).
    return new MeshCall(stack, origin, options, nextCall, channels) as CallInterface as InterceptingCall;
  };
}
