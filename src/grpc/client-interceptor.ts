import { InterceptingCall, Metadata } from '@grpc/grpc-js';
import type { Interceptor, InterceptorOptions, InterceptingListener, NextCall, StatusObject } from '@grpc/grpc-js';
import type { Host } from '../balancer/host.js';
import type { CancelTimer } from '../clock.js';
import type { Cluster } from '../cluster/cluster.js';
import { MeshClosedError, MeshError } from '../errors.js';
import type { OverflowError } from '../resilience/errors.js';
import { remainingTimeMs } from '../resilience/deadline.js';
import { retriableFailure, retriableGrpcStatus } from '../resilience/retry-on.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import { DEFAULT_RETRY_POLICY } from '../resilience/retry-policy.js';
import type { FaultActions, HeaderOps } from '../routing/route-actions.js';
import { routeActions } from '../routing/route-actions.js';
import type { RouteRequest } from '../match/route-request.js';
import type { CompiledDestination } from '../routing/route-table.js';
import { matchRoute, pickDestination } from '../routing/route-table.js';
import { ResponseFlag } from '../telemetry/response-flags.js';
import type { RpcTelemetry } from '../telemetry/rpc-telemetry.js';
import { callHash } from './call-hash.js';
import { GrpcNoRouteError, GrpcTlsPortError, GrpcUnsupportedRouteError } from './errors.js';
import { GrpcCode, grpcToHttpStatus, httpToGrpcStatus } from './grpc-status.js';
import type { GrpcMeshCore } from './mesh-core.js';
import type { MeshTarget } from './registry.js';
import { ATTEMPT_KEY, registerAttempt, releaseAttempt, targetOf } from './registry.js';
import { applyMetadataOps } from './metadata-ops.js';
import type { AttemptOwner, CallInterface } from './call-attempt.js';
import { CallAttempt } from './call-attempt.js';
import type { AttemptPolicy, EngineFlag } from '../outbound/attempts/attempt-engine.js';
import { AttemptEngine } from '../outbound/attempts/attempt-engine.js';
import { PerTryTimeoutError } from '../outbound/errors.js';
import type { AttemptHooks } from './mesh-channel.js';
import { WireBytes, withAttemptHooks } from './mesh-channel.js';
import { rateLimitedStatus } from './rate-limit-status.js';

type MessageContext = Parameters<CallInterface['sendMessageWithContext']>[0];
interface Queued {
  readonly context: MessageContext;
  readonly message: unknown;
}

/** Metadata key of the mesh's error code on a call the mesh failed itself. */
export const ERROR_CODE_KEY = 'x-sidecarless-error-code';

/** Messages kept for a retry; a longer client stream is sent once, never partly resent. */
const MAX_REPLAY_MESSAGES = 64;

const NO_OPS: readonly HeaderOps[] = [];

/** The route's decision for one call: the cluster, and what the route does around the attempts. */
interface CallPlan extends AttemptPolicy {
  readonly cluster: Cluster;
  readonly timeoutMs: number;
  readonly fault: FaultActions | undefined;
  /** The route's and destination's `headers.response` rules, for the response metadata. */
  readonly responseOps: readonly HeaderOps[];
  /** The `:authority` a `rewrite.authority` or `host` header rule gives the call, else undefined (the target's). */
  readonly authority: string | undefined;
  /** The method path a route's `rewrite` sends instead of the client's, else undefined. */
  readonly path: string | undefined;
}

/** A plan; the mesh's own answer; or a wait (DNS, credentials, a SHARED rate limit), after which the call is decided again or answered. */
type Decision = CallPlan | StatusObject | Promise<StatusObject | void>;

/** What Envoy's :path may carry: a gRPC method path rewritten to anything else is not sent. */
const SENDABLE_PATH = /^\/[\x21-\x7e]*$/;

/** What route matching reads of a gRPC call: its path and metadata (headers), method POST. */
class GrpcRouteRequest implements RouteRequest {
  readonly method = 'POST';
  readonly scheme = 'http';
  readonly query = '';
  constructor(
    readonly authority: string,
    readonly port: number,
    readonly path: string,
    private readonly metadata: Metadata,
  ) {}

  header(name: string): string | undefined {
    if (name === ':authority' || name === 'host') return this.authority;
    if (name === ':path') return this.path;
    if (name === ':method') return 'POST';
    if (name === 'content-type') return 'application/grpc';
    const values = this.metadata.get(name);
    if (values.length === 0) return undefined;
    if (values.length === 1) return typeof values[0] === 'string' ? values[0] : undefined;
    const text = values.filter((v): v is string => typeof v === 'string');
    return text.length === 0 ? undefined : text.join(',');
  }
}

function localStatus(code: number, details: string, error?: MeshError): StatusObject {
  const metadata = new Metadata();
  if (error) metadata.set(ERROR_CODE_KEY, error.code);
  return { code, details, metadata };
}

function errorStatus(error: unknown): StatusObject {
  if (error instanceof MeshError) return localStatus(GrpcCode.UNAVAILABLE, `${error.code}: ${error.message}`, error);
  return localStatus(GrpcCode.INTERNAL, error instanceof Error ? error.message : String(error));
}

const NO_LISTENER: Partial<InterceptingListener> = Object.freeze({});

/** How errors name a destination. */
function destinationText(host: string, subset: string | undefined, port: number): string {
  return `${host}${subset ? ` subset ${subset}` : ''} port ${port}`;
}

function epochOf(deadline: InterceptorOptions['deadline']): number {
  if (deadline === undefined) return Infinity;
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** The engine's policy before a call is routed (no cluster yet), one per mesh. */
const unrouted = new WeakMap<GrpcMeshCore, AttemptPolicy>();

function unroutedPolicy(core: GrpcMeshCore): AttemptPolicy {
  let policy = unrouted.get(core);
  if (!policy)
    unrouted.set(core, (policy = { clock: core.clock, random: core.random, retry: undefined, hash: undefined, avoidPreviousHosts: false, hedgeAfterMs: 0 }));
  return policy;
}

/**
 * A call through the mesh: the VirtualService route on the gRPC path and metadata, the fault,
 * the deadline (the caller's, the route timeout and the inbound request's, whichever is sooner),
 * and its attempts, whose policy (retries with Istio's gRPC retryOn names, perTryTimeout, Envoy's
 * back-off, hedging, host choice, the cluster's limits) is the same {@link AttemptEngine} as
 * HTTP's. This side adds gRPC: the messages kept for a retry, the response held until it is
 * known to be final, which statuses are retriable, and the mesh's own statuses.
 */
class MeshCall extends AttemptEngine<CallAttempt> implements CallInterface, AttemptOwner {
  private listener: Partial<InterceptingListener> = NO_LISTENER;
  /** The caller's metadata (a copy once the route's rules change it); set by start(). */
  private metadata!: Metadata;
  private plan: CallPlan | undefined;
  /** Messages sent so far, kept for a retry (flags only: their callbacks were answered). */
  private sent: Queued[] = [];
  /**
   * Messages waiting for the current attempt (or the first one), handed over one at a time:
   * grpc-js takes a call's next message only once the previous one's callback ran.
   */
  private pending: Queued[] = [];
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
  /** The fault's delay. */
  private timer: CancelTimer | undefined;
  private deadlineAt = Infinity;
  /** The call's spans and metrics; undefined when telemetry is off (then nothing of OTel is loaded). */
  private telemetry: RpcTelemetry | undefined;
  /** The destination picked (and let through by the rate limits): a call decided again keeps it. */
  private admitted = false;
  private admittedDestination: CompiledDestination | undefined = undefined;

  constructor(
    private readonly core: GrpcMeshCore,
    private readonly target: MeshTarget | undefined,
    private readonly options: InterceptorOptions,
    private readonly nextCall: NextCall,
  ) {
    // The cluster and policy are the route's, set once the call is routed (see decide).
    super(undefined, unroutedPolicy(core));
  }

  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    this.metadata = metadata;
    this.listener = listener ?? NO_LISTENER;
    // Here, in the caller's context: its active span is the parent of the call's spans.
    const target = this.target;
    this.telemetry = this.core.telemetry()?.beginRpc(this.options.method_definition.path, target?.host ?? '', target?.port ?? 0);
    this.decide();
  }

  private decide(): void {
    let decision: Decision;
    try {
      decision = this.route();
    } catch (error) {
      this.localReply(errorStatus(error));
      return;
    }
    if (decision instanceof Promise) {
      decision.then(
        (answer) => {
          if (this.done) return;
          if (answer) this.localReply(answer);
          else this.decide();
        },
        (error: unknown) => this.localReply(errorStatus(error)),
      );
      return;
    }
    if ('code' in decision) {
      this.localReply(decision);
      return;
    }
    this.plan = decision;
    this.cluster = decision.cluster;
    this.policy = decision;
    this.armDeadline(decision.timeoutMs);
    if (this.done) return;
    // Every attempt is sent with the call's deadline and the route's authority: set once on the
    // options grpc-js made for this call (they are the call's own).
    const options = this.options;
    options.deadline = this.deadlineAt;
    // grpc-js sends a call's `host` option as its :authority.
    if (decision.authority !== undefined) options.host = decision.authority;
    const fault = decision.fault;
    if (fault && fault.delayFraction > 0 && this.core.random() < fault.delayFraction) {
      // Envoy's fault filter: the delay first, the abort once it has passed.
      this.telemetry?.flag(ResponseFlag.DI);
      this.timer = this.core.clock.schedule(
        fault.delayMs,
        () => {
          this.timer = undefined;
          if (!this.done && !this.abortFault(fault)) this.startAttempt();
        },
        'request',
      );
      return;
    }
    if (fault && this.abortFault(fault)) return;
    this.startAttempt();
  }

  private route(): Decision {
    const core = this.core;
    if (core.isClosed()) throw new MeshClosedError();
    const target = this.target;
    if (!target)
      throw new GrpcNoRouteError('the gRPC channel has no mesh:/// target; create the client with a mesh:///host:port address and meshGrpcOptions(mesh)');
    const destinations = core.destinations;
    const snapshot = destinations.snapshot();
    const serviceHost = destinations.serviceHost(target.host);
    const table = snapshot.routeTable(serviceHost);
    const clusters = core.clusters;
    if (!table && !snapshot.service(serviceHost) && !clusters.discovers(serviceHost, target.host)) {
      const pending = clusters.discoveryPending(serviceHost, target.host);
      if (pending) return pending;
      throw new GrpcNoRouteError(
        `no service ${serviceHost} in the mesh (from the gRPC target mesh:///${target.host}:${target.port}); calls to hosts outside the mesh's registry are not supported over gRPC`,
      );
    }
    // A TLS or HTTPS port carries TLS the client originates, routed by SNI: this channel is
    // plaintext, so the call is refused rather than sent there in the clear.
    const portRoute = snapshot.routeFor(serviceHost, target.port, (h, p) => clusters.portProtocol(h, p));
    if (portRoute.kind === 'tls') throw new GrpcTlsPortError(`${serviceHost} port ${target.port}`, portRoute.protocol);
    const path = this.options.method_definition.path;
    let host = serviceHost;
    let port = target.port;
    let subset: string | undefined;
    let routeName: string | undefined;
    let rewritten: string | undefined;
    let retry: RetryPolicy | undefined = DEFAULT_RETRY_POLICY;
    let timeoutMs = 0;
    let fault: FaultActions | undefined;
    let responseOps = NO_OPS;
    let authority: string | undefined;
    let requestOps = NO_OPS;
    const request = new GrpcRouteRequest(`${target.host}:${target.port}`, target.port, path, this.metadata);
    let picked: CompiledDestination | undefined;
    if (table) {
      const hit = matchRoute(table, request);
      // Envoy's NR (404) as gRPC sees it.
      if (!hit) {
        this.telemetry?.answeredLocally('route-not-found', ResponseFlag.NR);
        return localStatus(GrpcCode.UNIMPLEMENTED, `route not found for ${path} on ${serviceHost}`);
      }
      const actions = routeActions(hit.route);
      if (actions.directResponse) return localStatus(httpToGrpcStatus(actions.directResponse.status), actions.directResponse.body);
      if (actions.redirect) return localStatus(GrpcCode.UNKNOWN, `the route for ${path} on ${serviceHost} redirects, which a gRPC call cannot follow`);
      // Picked once: a call decided again (after a SHARED rate limit's answer) keeps its destination.
      const destination = this.admitted ? this.admittedDestination : pickDestination(hit.route, core.random());
      if (!destination) return localStatus(GrpcCode.INTERNAL, 'route has no destination');
      picked = destination;
      host = destination.host;
      port = destination.port ?? port;
      subset = destination.subset;
      // The route's compiled rewrite, as for HTTP: the matched prefix replaced, the whole path, or the regex.
      rewritten = actions.rewritePath(path, hit.matchIndex);
      if (rewritten !== undefined && !SENDABLE_PATH.test(rewritten)) {
        throw new GrpcUnsupportedRouteError(
          `the route for ${path} on ${serviceHost} (${hit.route.resource.namespace}/${hit.route.resource.name} ${hit.route.path}) rewrites the path to ${JSON.stringify(rewritten)}, which is not a path a gRPC call can send; the call was not sent`,
        );
      }
      const rules = actions.destination(destination);
      requestOps = rules.request;
      retry = actions.retry;
      timeoutMs = actions.timeoutMs;
      fault = actions.fault;
      responseOps = rules.response;
      authority = rules.authority;
      if (rewritten === path) rewritten = undefined;
      routeName = hit.route.name;
    }
    // Client-side rate limits, once per call, as HTTP asks them: after the destination is picked.
    const rateLimits = core.rateLimits;
    if (rateLimits && !this.admitted) {
      const limited = rateLimits.check(snapshot.rateLimits, request, serviceHost, table ? (routeName ?? '') : 'default', host, subset, port);
      if (limited) {
        if (!(limited instanceof Promise)) return this.rateLimited(rateLimitedStatus(limited));
        this.admitted = true;
        this.admittedDestination = picked;
        return limited.then((denial) => (denial ? this.rateLimited(rateLimitedStatus(denial)) : undefined));
      }
    }
    this.admitted = true;
    this.admittedDestination = picked;
    const cluster = picked ? destinations.clusterFor(picked, port) : destinations.serviceCluster(host, port);
    if (cluster?.warming) return cluster.warming;
    if (!cluster) {
      if (subset !== undefined) {
        this.telemetry?.answeredLocally('no-healthy-upstream', ResponseFlag.NC);
        return localStatus(GrpcCode.UNAVAILABLE, 'no healthy upstream');
      }
      throw new GrpcNoRouteError(
        `${destinationText(host, subset, port)} has no endpoints in the mesh; gRPC calls need endpoints the mesh knows (ServiceEntry, WorkloadEntry, EndpointSlices or DNS)`,
      );
    }
    if (cluster.passthrough)
      throw new GrpcNoRouteError(
        `${destinationText(host, subset, port)} has no endpoints in the mesh (resolution NONE); gRPC calls need endpoints the mesh knows`,
      );
    // Client credentials being read for the first time: wait for them, then look again.
    const tls = cluster.upstreamTls;
    if (tls?.kind === 'unavailable' && tls.pending) return tls.pending;
    // TLS the mesh cannot originate now fails closed, before anything is sent (never plaintext).
    const refusal = cluster.tlsRefusal();
    if (refusal) throw refusal;
    this.telemetry?.routed(routeName, host, subset, cluster.name);
    if (requestOps.length > 0) {
      // Once, before the first attempt (every attempt sends a clone); the caller's object is left as it was.
      this.metadata = this.metadata.clone();
      const refused = applyMetadataOps(this.metadata, requestOps);
      // Fails closed: a call without the metadata its route adds could pass where it should not.
      if (refused !== undefined)
        throw new GrpcUnsupportedRouteError(
          `the route for ${path} on ${serviceHost} (${routeName ?? 'unnamed'}) sets metadata grpc-js cannot send (${refused}); the call was not sent`,
        );
    }
    const hashOn = cluster.hashOn;
    return {
      retry,
      timeoutMs,
      fault,
      responseOps,
      authority,
      path: rewritten,
      cluster,
      clock: core.clock,
      random: core.random,
      hash: hashOn ? callHash(hashOn, this.metadata) : undefined,
      // As Envoy: a retry avoids the hosts tried unless the route says not to, or, by default, the cluster hashes.
      avoidPreviousHosts: retry !== undefined && (retry.ignorePreviousHosts ?? hashOn === undefined),
      // Hedged: calls whose request is complete before any answer matters (unary, server streaming).
      hedgeAfterMs: retry !== undefined && !this.options.method_definition.requestStream ? cluster.hedgeAfterMs : 0,
    };
  }

  private rateLimited(status: StatusObject): StatusObject {
    this.telemetry?.answeredLocally('rate-limited', ResponseFlag.RL);
    return status;
  }

  /** The sooner of the caller's deadline, the route timeout and the inbound request's deadline. */
  private armDeadline(timeoutMs: number): void {
    const now = Date.now();
    let at = epochOf(this.options.deadline);
    if (timeoutMs > 0) at = Math.min(at, now + timeoutMs);
    const remaining = remainingTimeMs();
    if (remaining !== undefined) {
      if (remaining <= 0) {
        this.localReply(localStatus(GrpcCode.DEADLINE_EXCEEDED, "deadline exceeded: the inbound request's deadline passed before the call was sent"));
        return;
      }
      at = Math.min(at, now + remaining);
    }
    this.deadlineAt = at;
  }

  private abortFault(fault: FaultActions): boolean {
    if (fault.abortFraction <= 0 || this.core.random() >= fault.abortFraction) return false;
    this.telemetry?.answeredLocally('fault-abort', ResponseFlag.FI);
    this.localReply(localStatus(fault.abortGrpcStatus ?? httpToGrpcStatus(fault.abortStatus), 'fault filter abort'));
    return true;
  }

  private startAttempt(): void {
    this.sendAttempt(false, false);
  }

  // ---- the engine's protocol side ----

  protected createAttempt(host: Host | undefined, retry: boolean): CallAttempt {
    return new CallAttempt(this, this.core, this.plan!.cluster, host!, this.target!.host, retry);
  }

  protected transmit(attempt: CallAttempt): void {
    const plan = this.plan!;
    if (this.deadlineAt !== Infinity && Date.now() >= this.deadlineAt) {
      // The deadline passed while a retry waited: nothing is sent.
      this.endAttempt(attempt, false, false);
      this.finish(localStatus(GrpcCode.DEADLINE_EXCEEDED, 'deadline exceeded'), undefined);
      return;
    }
    attempt.id = registerAttempt(attempt);
    this.attempt = attempt;
    const first = this.attempts.length === 1;
    const metadata = this.metadata.clone();
    metadata.set(ATTEMPT_KEY, attempt.id);
    if (this.telemetry) attempt.span = this.telemetry.attempt(metadata, first ? plan.retry : undefined);
    const call = this.channelCall(attempt, this.options);
    if (!call) return;
    attempt.call = call;
    // The attempt is its call's listener: it hands each event to this call with itself.
    call.start(metadata, attempt);
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
    this.localReply(localStatus(GrpcCode.UNAVAILABLE, 'no healthy upstream'));
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
    return this.core.isClosed();
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
      this.plan!.cluster.report(host, attempt.perTryTimedOut ? { status: 0, failure: 'timeout' } : { status: grpcToHttpStatus(code), failure: undefined });
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
    const path = this.plan!.path;
    if (this.telemetry?.mesh.istioRecording) attempt.bytes = new WireBytes();
    if (path === undefined && attempt.bytes === undefined) return this.nextCall(options);
    const hooks: AttemptHooks = { path, bytes: attempt.bytes };
    const { call, applied } = withAttemptHooks(hooks, () => this.nextCall(options));
    if (applied || path === undefined) return call;
    // Not the mesh's channel under this interceptor: the call would go to the path the route rewrites.
    call.cancelWithStatus(GrpcCode.CANCELLED, 'not sent');
    attempt.noHost = true;
    this.detach(attempt);
    this.endAttempt(attempt, false, false);
    const status = errorStatus(
      new GrpcUnsupportedRouteError(
        `the route for ${this.options.method_definition.path} rewrites the path to ${path}, which only the channel of meshGrpcOptions(mesh) can send; the call was not sent`,
      ),
    );
    this.telemetry?.attemptEnded(attempt.span, status.code, status.details);
    this.finish(status, undefined);
    return undefined;
  }

  /** Hands the attempt its next waiting message; half-closes it once none is left and the caller half-closed. */
  private pump(attempt: CallAttempt): void {
    const next = this.pending.shift();
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
    releaseAttempt(attempt.id);
    if (attempt !== this.attempt) return;
    this.attempt = undefined;
    const inflight = this.inflight;
    const pending = this.pending;
    this.inflight = undefined;
    this.pending = [];
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
    const ops = this.plan!.responseOps;
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
    this.sent = [];
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
    const ops = this.plan!.responseOps;
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
    const policy = this.plan?.retry;
    if (!policy || !this.replayable || attempt.callerCancelled || attempt.noHost) return false;
    const bits = policy.retryOn;
    if (attempt.perTryTimedOut) return retriableFailure(bits, 'timeout', true);
    if (attempt.connectFailure) return retriableFailure(bits, 'connect-failure', false) || retriableGrpcStatus(bits, GrpcCode.UNAVAILABLE);
    return status.code !== GrpcCode.OK && retriableGrpcStatus(bits, status.code);
  }

  /** The mesh answers the call itself, later, as a network answer would come. */
  private localReply(status: StatusObject): void {
    this.done = true;
    setImmediate(() => this.finish(status, undefined));
  }

  /** The caller gets `status`, from `from` (undefined: the mesh's own answer); every other attempt is cancelled. */
  private finish(status: StatusObject, from: CallAttempt | undefined): void {
    if (this.statusSent) return;
    this.statusSent = true;
    this.stopAttempts();
    this.timer?.();
    this.timer = undefined;
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
        this.sent = [];
      } else {
        // A replay answers no callback: the caller's was answered by the first send.
        this.sent.push(context.callback === undefined ? queued : { context: { flags: context.flags }, message });
      }
    }
    const attempt = this.attempt;
    if (attempt || this.attempts.length === 0) {
      this.pending.push(queued);
      if (attempt && !this.sending) this.pump(attempt);
      return;
    }
    // Between attempts: the next one sends it again from `sent`; if none comes, the call is ending.
    context.callback?.();
  }

  sendMessage(message: unknown): void {
    this.sendMessageWithContext({}, message);
  }

  startRead(): void {
    this.readPending = true;
    // Every attempt still running reads: any of them may win.
    for (let i = 0; i < this.attempts.length; i++) {
      const a = this.attempts[i]!;
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
    for (let i = 0; i < this.attempts.length; i++) {
      const a = this.attempts[i]!;
      if (a.ended || a.abandoned || !a.call) continue;
      running = true;
      a.callerCancelled = true;
      a.call.cancelWithStatus(code, details);
    }
    // The first cancelled attempt's status answers the caller.
    if (running) return;
    this.stopAttempts();
    this.timer?.();
    this.timer = undefined;
    setImmediate(() => this.finish({ code, details, metadata: new Metadata() }, undefined));
  }

  getPeer(): string {
    return (this.winner ?? this.attempt)?.call?.getPeer() ?? '';
  }

  getAuthContext(): ReturnType<CallInterface['getAuthContext']> {
    return (this.winner ?? this.attempt)?.call?.getAuthContext() ?? null;
  }
}

/** The interceptor of one client made with `meshGrpcOptions`: it finds its target through the channel's resolver. */
export function meshClientInterceptor(core: GrpcMeshCore, client: number): Interceptor {
  return (options, nextCall) => new InterceptingCall(new MeshCall(core, targetOf(client), options, nextCall));
}
