import { InterceptingCall, Metadata } from '@grpc/grpc-js';
import type { Interceptor, InterceptorOptions, InterceptingListener, NextCall, StatusObject } from '@grpc/grpc-js';
import type { Span } from '@opentelemetry/api';
import type { Host } from '../balancer/host.js';
import { onFinish, onStart } from '../balancer/host.js';
import type { CancelTimer, MeshClock } from '../clock.js';
import type { Cluster } from '../cluster/cluster.js';
import type { Snapshot } from '../config/snapshot.js';
import { MeshClosedError, MeshError } from '../errors.js';
import type { OverflowError } from '../resilience/errors.js';
import { remainingTimeMs } from '../resilience/deadline.js';
import { retriableFailure, retriableGrpcStatus } from '../resilience/retry-on.js';
import type { RetryPolicy } from '../resilience/retry-policy.js';
import { backoffDelayMs, DEFAULT_RETRY_POLICY } from '../resilience/retry-policy.js';
import { resolveServiceHost } from '../routing/resolve-host.js';
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
import type { GrpcTransportRef, MeshTarget, PickTarget } from './registry.js';
import { ATTEMPT_KEY, registerAttempt, releaseAttempt, targetOf } from './registry.js';
import { applyMetadataOps } from './metadata-ops.js';
import { transportFor } from './transport.js';
import type { AttemptHooks } from './mesh-channel.js';
import { WireBytes, withAttemptHooks } from './mesh-channel.js';
import { rateLimitedStatus } from './rate-limit-status.js';

type CallInterface = ConstructorParameters<typeof InterceptingCall>[0];
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
interface CallPlan {
  readonly cluster: Cluster;
  readonly destination: string;
  readonly retry: RetryPolicy | undefined;
  readonly timeoutMs: number;
  readonly fault: FaultActions | undefined;
  /** The route's and destination's `headers.response` rules, for the response metadata. */
  readonly responseOps: readonly HeaderOps[];
  /** The `:authority` a `rewrite.authority` or `host` header rule gives the call, else undefined (the target's). */
  readonly authority: string | undefined;
  /** The consistent-hash key of the call (DestinationRule `consistentHash`), else undefined. */
  readonly hash: number | undefined;
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

function epochOf(deadline: InterceptorOptions['deadline']): number {
  if (deadline === undefined) return Infinity;
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/** Service host per written host, per snapshot: resolved once, not per call. */
const hostMemo = new WeakMap<Snapshot, Map<string, string>>();

function serviceHostOf(snapshot: Snapshot, written: string): string {
  let hosts = hostMemo.get(snapshot);
  if (!hosts) hostMemo.set(snapshot, (hosts = new Map()));
  let host = hosts.get(written);
  if (host === undefined) {
    host = resolveServiceHost(written, snapshot);
    hosts.set(written, host);
  }
  return host;
}

/**
 * One attempt of a call, as the mesh's picker sees it: the cluster's balancer picks the host
 * (away from hosts already tried), and how the attempt ended feeds the same outlier detection
 * and balancer statistics as HTTP, in Envoy's terms (UNAVAILABLE is a 503, a gateway error).
 */
class Attempt implements PickTarget {
  host: Host | undefined = undefined;
  call: CallInterface | undefined = undefined;
  id = '';
  cancelTimer: CancelTimer | undefined = undefined;
  perTryTimedOut = false;
  connectFailure = false;
  callerCancelled = false;
  noHost = false;
  /** The attempt was half-closed (after its last message was handed over). */
  halfClosed = false;
  /** grpc-js's callback for a message this attempt sent: made once per attempt of a client stream. */
  onSent: (() => void) | undefined = undefined;
  /** The attempt's CLIENT span, when traced. */
  span: Span | undefined = undefined;
  /** Its serialized messages, counted when Istio's byte metrics are recorded. */
  bytes: WireBytes | undefined = undefined;
  private startedAt = -1;
  /** Counted active by the cluster's limits (no longer pending). */
  private active = false;
  private released = false;

  constructor(
    private readonly core: GrpcMeshCore,
    private readonly cluster: Cluster,
    private readonly avoid: readonly Host[],
    /** The host the client wrote in its target: Envoy's auto SNI for a DestinationRule's TLS. */
    private readonly authorityHost: string,
    private readonly telemetry: RpcTelemetry | undefined,
    private readonly hash: number | undefined,
    /** A retry: admitted by the cluster's limits as one (maxRetries, retry budget). */
    private readonly retry: boolean,
  ) {}

  /** Once, however the attempt ends: the cluster's limits count it off (as HTTP's `finished`). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.cluster.limits.finished(this.active, this.retry);
  }

  pick(): Host | undefined {
    const avoid = this.avoid;
    const hash = this.hash;
    const host = avoid.length > 0 ? (this.cluster.pick(hash, (h) => avoid.includes(h)) ?? this.cluster.pick(hash)) : this.cluster.pick(hash);
    if (!host) this.noHost = true;
    return host;
  }

  started(host: Host): void {
    // On a connection: no longer pending for the cluster's limits.
    if (!this.active) {
      this.active = true;
      this.cluster.limits.started();
    }
    onStart(host);
    this.startedAt = this.core.clock.now();
    this.telemetry?.picked(this.span, host);
  }

  connectFailed(host: Host): void {
    this.connectFailure = true;
    this.cluster.report(host, { status: 0, failure: 'connect-failure' });
  }

  ended(host: Host, code: number): void {
    const now = this.core.clock.now();
    if (this.startedAt >= 0) onFinish(host, now - this.startedAt, code === GrpcCode.OK, now);
    // The caller's cancel says nothing of the pod.
    if (this.callerCancelled) return;
    this.cluster.report(host, this.perTryTimedOut ? { status: 0, failure: 'timeout' } : { status: grpcToHttpStatus(code), failure: undefined });
  }

  get slot(): string {
    return this.cluster.name;
  }

  get connectTimeoutMs(): number {
    return this.cluster.connectTimeoutMs;
  }

  get clock(): MeshClock {
    return this.core.clock;
  }

  transport(host: Host): GrpcTransportRef | MeshError | undefined {
    const transport = transportFor(this.cluster, host, this.authorityHost, this.core.certificates());
    // Never the pod's fault, never retried: the call is not sent at all.
    if (transport instanceof MeshError) this.noHost = true;
    return transport;
  }
}

/**
 * A call through the mesh: the VirtualService route on the gRPC path and metadata, the fault,
 * the deadline (the caller's, the route timeout and the inbound request's, whichever is sooner),
 * and the retry loop (Istio's gRPC retryOn names, attempts, perTryTimeout, Envoy's back-off) over
 * attempts the mesh's picker places on the route's weighted destination.
 */
class MeshCall implements CallInterface {
  private listener: Partial<InterceptingListener> = {};
  private metadata = new Metadata();
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
  private committed = false;
  private heldMetadata: Metadata | undefined;
  /** A unary response's message, kept until its status says whether the attempt is retried. */
  private heldMessage: { readonly message: unknown } | undefined;
  private done = false;
  private statusSent = false;
  private attempt: Attempt | undefined;
  private attempts = 0;
  private readonly tried: Host[] = [];
  private timer: CancelTimer | undefined;
  private deadlineAt = Infinity;
  /** The call's spans and metrics; undefined when telemetry is off (then nothing of OTel is loaded). */
  private telemetry: RpcTelemetry | undefined;
  /** The destination picked (and let through by the rate limits): a call decided again keeps it. */
  private admitted: { readonly destination: CompiledDestination | undefined } | undefined;
  /** A retry the cluster's limits admitted (maxRetries, retry budget) that has not started yet. */
  private retryAdmitted = false;
  /** The serialized bytes of the attempt that ended the call (Istio's request and response bytes). */
  private wire: WireBytes | undefined;
  /** The last attempt's status came from a pod (not a refused connection, a per-try timeout, no host). */
  private podAnswered = false;
  /** The attempt that ends the call sent response headers (not trailers only). */
  private metadataReceived = false;

  constructor(
    private readonly core: GrpcMeshCore,
    private readonly target: MeshTarget | undefined,
    private readonly options: InterceptorOptions,
    private readonly nextCall: NextCall,
  ) {}

  start(metadata: Metadata, listener?: Partial<InterceptingListener>): void {
    this.metadata = metadata;
    this.listener = listener ?? {};
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
    this.armDeadline(decision.timeoutMs);
    if (this.done) return;
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
    const snapshot = core.snapshot();
    const serviceHost = serviceHostOf(snapshot, target.host);
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
    let plan: Omit<CallPlan, 'cluster' | 'destination' | 'hash'> = {
      retry: DEFAULT_RETRY_POLICY,
      timeoutMs: 0,
      fault: undefined,
      responseOps: NO_OPS,
      authority: undefined,
      path: undefined,
    };
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
      const destination = this.admitted ? this.admitted.destination : pickDestination(hit.route, core.random());
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
      plan = {
        retry: actions.retry,
        timeoutMs: actions.timeoutMs,
        fault: actions.fault,
        responseOps: rules.response,
        authority: rules.authority,
        path: rewritten === path ? undefined : rewritten,
      };
      routeName = hit.route.name;
    }
    // Client-side rate limits, once per call, as HTTP asks them: after the destination is picked.
    const rateLimits = core.rateLimits;
    if (rateLimits && !this.admitted) {
      const limited = rateLimits.check(snapshot.rateLimits, request, serviceHost, table ? (routeName ?? '') : 'default', host, subset, port);
      if (limited) {
        if (!(limited instanceof Promise)) return this.rateLimited(rateLimitedStatus(limited));
        this.admitted = { destination: picked };
        return limited.then((denial) => (denial ? this.rateLimited(rateLimitedStatus(denial)) : undefined));
      }
    }
    this.admitted = { destination: picked };
    const destination = `${host}${subset ? ` subset ${subset}` : ''} port ${port}`;
    const cluster = clusters.get(host, subset, port);
    if (cluster?.warming) return cluster.warming;
    if (!cluster) {
      if (subset !== undefined) {
        this.telemetry?.answeredLocally('no-healthy-upstream', ResponseFlag.NC);
        return localStatus(GrpcCode.UNAVAILABLE, 'no healthy upstream');
      }
      throw new GrpcNoRouteError(
        `${destination} has no endpoints in the mesh; gRPC calls need endpoints the mesh knows (ServiceEntry, WorkloadEntry, EndpointSlices or DNS)`,
      );
    }
    if (cluster.passthrough)
      throw new GrpcNoRouteError(`${destination} has no endpoints in the mesh (resolution NONE); gRPC calls need endpoints the mesh knows`);
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
    return { ...plan, cluster, destination, hash: hashOn ? callHash(hashOn, this.metadata) : undefined };
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
    const plan = this.plan!;
    // A retry was admitted by the cluster's limits when it was decided; a first attempt is admitted now.
    const retry = this.retryAdmitted;
    this.retryAdmitted = false;
    if (this.done) {
      if (retry) plan.cluster.limits.finished(false, true);
      return;
    }
    if (this.deadlineAt !== Infinity && Date.now() >= this.deadlineAt) {
      if (retry) plan.cluster.limits.finished(false, true);
      this.podAnswered = false;
      this.finish(localStatus(GrpcCode.DEADLINE_EXCEEDED, 'deadline exceeded'));
      return;
    }
    if (!retry) {
      const overflow = plan.cluster.limits.admit(false);
      if (overflow) {
        this.overflow(overflow);
        return;
      }
    }
    // As Envoy: a retry avoids the hosts tried unless the route says not to, or, by default, the cluster hashes.
    const avoid = (plan.retry?.ignorePreviousHosts ?? plan.cluster.hashOn === undefined) ? this.tried : [];
    const attempt = new Attempt(this.core, plan.cluster, avoid, this.target!.host, this.telemetry, plan.hash, retry);
    attempt.id = registerAttempt(attempt);
    this.attempt = attempt;
    const first = this.attempts === 0;
    this.attempts++;
    const metadata = this.metadata.clone();
    metadata.set(ATTEMPT_KEY, attempt.id);
    if (this.telemetry) attempt.span = this.telemetry.attempt(metadata, first ? plan.retry : undefined);
    const options: InterceptorOptions = { ...this.options, deadline: this.deadlineAt === Infinity ? Infinity : this.deadlineAt };
    // grpc-js sends a call's `host` option as its :authority.
    if (plan.authority !== undefined) options.host = plan.authority;
    const call = this.channelCall(attempt, options);
    if (!call) return;
    attempt.call = call;
    const perTry = plan.retry?.perTryTimeoutMs ?? 0;
    if (perTry > 0) {
      attempt.cancelTimer = this.core.clock.schedule(
        perTry,
        () => {
          attempt.perTryTimedOut = true;
          call.cancelWithStatus(GrpcCode.DEADLINE_EXCEEDED, `upstream per-try timeout: the attempt's ${perTry} ms passed`);
        },
        'request',
      );
    }
    call.start(metadata, {
      onReceiveMetadata: (received) => this.onMetadata(attempt, received),
      onReceiveMessage: (message) => this.onMessage(attempt, message),
      onReceiveStatus: (status) => this.onStatus(attempt, status),
    });
    // The first attempt sends what the caller sent before it; a retry sends everything again.
    if (!first) this.pending = this.sent.slice();
    this.sending = false;
    this.pump(attempt);
    if (this.readPending) call.startRead();
  }

  /**
   * The attempt's call from the next interceptor (grpc-js's own, which makes the channel's call),
   * with the route's path rewrite and the byte count applied by the mesh's channel; undefined
   * (the call answered) when a rewrite could not be applied.
   */
  private channelCall(attempt: Attempt, options: InterceptorOptions): CallInterface | undefined {
    const path = this.plan!.path;
    if (this.telemetry?.mesh.istioRecording) attempt.bytes = new WireBytes();
    if (path === undefined && attempt.bytes === undefined) return this.nextCall(options);
    const hooks: AttemptHooks = { path, bytes: attempt.bytes };
    const { call, applied } = withAttemptHooks(hooks, () => this.nextCall(options));
    if (applied || path === undefined) return call;
    // Not the mesh's channel under this interceptor: the call would go to the path the route rewrites.
    call.cancelWithStatus(GrpcCode.CANCELLED, 'not sent');
    releaseAttempt(attempt.id);
    attempt.release();
    this.attempt = undefined;
    this.podAnswered = false;
    const status = errorStatus(
      new GrpcUnsupportedRouteError(
        `the route for ${this.options.method_definition.path} rewrites the path to ${path}, which only the channel of meshGrpcOptions(mesh) can send; the call was not sent`,
      ),
    );
    this.telemetry?.attemptEnded(attempt.span, status.code, status.details);
    this.finish(status);
    return undefined;
  }

  /** The cluster's connection-pool limits refused the attempt: Envoy's overflow answer, nothing sent. */
  private overflow(overflow: OverflowError): void {
    this.telemetry?.answeredLocally('overflow', ResponseFlag.UO);
    const status = localStatus(GrpcCode.UNAVAILABLE, 'upstream connect error or disconnect/reset before headers. reset reason: overflow');
    status.metadata.set('x-envoy-overloaded', 'true');
    // Ours, as on HTTP: which DestinationRule limit refused it.
    status.metadata.set('x-sidecarless-overflow', `${overflow.limit}=${overflow.value}`);
    this.podAnswered = false;
    this.finish(status);
  }

  /** Hands the attempt its next waiting message; half-closes it once none is left and the caller half-closed. */
  private pump(attempt: Attempt): void {
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

  private messageSent(attempt: Attempt): void {
    if (attempt !== this.attempt) return;
    const callback = this.inflight;
    this.inflight = undefined;
    callback?.();
    if (attempt === this.attempt) this.pump(attempt);
  }

  /** The attempt ended: the caller's messages waiting for it are answered (a retry sends them again from `sent`). */
  private releaseMessages(): void {
    const inflight = this.inflight;
    const pending = this.pending;
    this.inflight = undefined;
    this.pending = [];
    this.sending = false;
    inflight?.();
    for (const m of pending) m.context.callback?.();
  }

  private onMetadata(attempt: Attempt, metadata: Metadata): void {
    if (attempt !== this.attempt) return;
    this.metadataReceived = true;
    const ops = this.plan!.responseOps;
    if (ops.length > 0) applyMetadataOps(metadata, ops);
    if (this.committed) this.listener.onReceiveMetadata?.(metadata);
    else this.heldMetadata = metadata;
  }

  private onMessage(attempt: Attempt, message: unknown): void {
    if (attempt !== this.attempt) return;
    this.readPending = false;
    if (!this.committed && !this.options.method_definition.responseStream) {
      // grpc-js hands a unary call its message (null when none came) just before the status.
      this.heldMessage = { message };
      return;
    }
    this.commit();
    this.listener.onReceiveMessage?.(message);
  }

  /** The response reached the caller: no retry from here on. */
  private commit(): void {
    if (this.committed) return;
    this.committed = true;
    this.sent = [];
    const held = this.heldMetadata;
    this.heldMetadata = undefined;
    if (held) this.listener.onReceiveMetadata?.(held);
  }

  private onStatus(attempt: Attempt, status: StatusObject): void {
    attempt.release();
    if (attempt !== this.attempt) return;
    attempt.cancelTimer?.();
    releaseAttempt(attempt.id);
    this.wire = attempt.bytes;
    this.attempt = undefined;
    this.releaseMessages();
    if (attempt.host) this.tried.push(attempt.host);
    const telemetry = this.telemetry;
    this.podAnswered = !(attempt.noHost || attempt.connectFailure || attempt.perTryTimedOut || attempt.callerCancelled);
    // A trailers-only response (an error status with no headers before it) is the headers Envoy's rules apply to.
    const ops = this.plan!.responseOps;
    if (this.podAnswered && !this.metadataReceived && ops.length > 0) applyMetadataOps(status.metadata, ops);
    if (telemetry) this.attemptTelemetry(telemetry, attempt, status);
    if (!this.done && !this.committed && this.retriable(attempt, status) && this.admitRetry()) {
      this.metadataReceived = false;
      telemetry?.retrying(attempt.connectFailure ? 'connect-failure' : attempt.perTryTimedOut ? 'per-try-timeout' : `grpc-status ${status.code}`);
      this.heldMetadata = undefined;
      this.heldMessage = undefined;
      const policy = this.plan!.retry!;
      this.timer = this.core.clock.schedule(
        backoffDelayMs(policy, this.attempts, this.core.random),
        () => {
          this.timer = undefined;
          this.startAttempt();
        },
        'request',
      );
      return;
    }
    this.finish(status);
  }

  /** Envoy's flags for how the attempt ended, and its span. */
  private attemptTelemetry(telemetry: RpcTelemetry, attempt: Attempt, status: StatusObject): void {
    if (attempt.noHost) telemetry.flag(ResponseFlag.UH);
    else if (attempt.connectFailure) telemetry.flag(ResponseFlag.UF);
    else if (attempt.perTryTimedOut) telemetry.flag(ResponseFlag.UT);
    if (attempt.callerCancelled) telemetry.flag(ResponseFlag.DC);
    telemetry.attemptEnded(attempt.span, status.code, status.details);
  }

  private retriable(attempt: Attempt, status: StatusObject): boolean {
    const policy = this.plan?.retry;
    if (!policy || this.attempts > policy.numRetries || !this.replayable || attempt.callerCancelled || attempt.noHost) return false;
    if (this.core.isClosed()) return false;
    const bits = policy.retryOn;
    if (attempt.perTryTimedOut) return retriableFailure(bits, 'timeout', true);
    if (attempt.connectFailure) return retriableFailure(bits, 'connect-failure', false) || retriableGrpcStatus(bits, GrpcCode.UNAVAILABLE);
    return status.code !== GrpcCode.OK && retriableGrpcStatus(bits, status.code);
  }

  /** The cluster's limits on retries (`maxRetries`, the retry budget); refused, the caller gets the attempt's answer. */
  private admitRetry(): boolean {
    const overflow = this.plan!.cluster.limits.admit(true);
    if (overflow) return false;
    this.retryAdmitted = true;
    return true;
  }

  /** The mesh answers the call itself, later, as a network answer would come. */
  private localReply(status: StatusObject): void {
    this.done = true;
    this.podAnswered = false;
    setImmediate(() => this.finish(status));
  }

  private finish(status: StatusObject): void {
    if (this.statusSent) return;
    this.statusSent = true;
    this.done = true;
    this.timer?.();
    this.timer = undefined;
    if (this.retryAdmitted) {
      // The retry it was waiting for never goes out: free what it was admitted for.
      this.retryAdmitted = false;
      this.plan?.cluster.limits.finished(false, true);
    }
    const held = this.heldMetadata;
    this.heldMetadata = undefined;
    if (held) this.listener.onReceiveMetadata?.(held);
    const message = this.heldMessage;
    this.heldMessage = undefined;
    if (message) this.listener.onReceiveMessage?.(message.message);
    const telemetry = this.telemetry;
    if (telemetry) {
      // Envoy's response_code: 200 for a status from a pod; the local reply's HTTP status otherwise.
      telemetry.finish(status.code, status.details, this.podAnswered ? 200 : grpcToHttpStatus(status.code), this.wire);
    }
    this.listener.onReceiveStatus?.(status);
  }

  sendMessageWithContext(context: MessageContext, message: unknown): void {
    if (this.statusSent) return;
    if (this.replayable && !this.committed) {
      if (this.sent.length >= MAX_REPLAY_MESSAGES) {
        this.replayable = false;
        this.sent = [];
      } else {
        this.sent.push({ context: { flags: context.flags }, message });
      }
    }
    const attempt = this.attempt;
    if (attempt || this.attempts === 0) {
      this.pending.push({ context, message });
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
    this.attempt?.call?.startRead();
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
    const attempt = this.attempt;
    if (attempt?.call) {
      attempt.callerCancelled = true;
      attempt.call.cancelWithStatus(code, details);
      return;
    }
    this.timer?.();
    this.timer = undefined;
    setImmediate(() => this.finish({ code, details, metadata: new Metadata() }));
  }

  getPeer(): string {
    return this.attempt?.call?.getPeer() ?? '';
  }

  getAuthContext(): ReturnType<CallInterface['getAuthContext']> {
    return this.attempt?.call?.getAuthContext() ?? null;
  }
}

/** The interceptor of one client made with `meshGrpcOptions`: it finds its target through the channel's resolver. */
export function meshClientInterceptor(core: GrpcMeshCore, client: number): Interceptor {
  return (options, nextCall) => new InterceptingCall(new MeshCall(core, targetOf(client), options, nextCall));
}
