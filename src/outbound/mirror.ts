import { isIP } from 'node:net';
import type { OutboundRequest, ResponseHandler } from '../request-protocol.js';
import type { MeshClock, RandomSource } from '../clock.js';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { CompiledMirror } from '../routing/mirror-policy.js';
import type { Destinations } from './destinations.js';
import type { UpstreamRequestInit } from './upstream-request.js';
import { UpstreamRequest } from './upstream-request.js';
import type { RequestObserver } from './observer.js';
import { NO_OBSERVER } from './observer.js';

/**
 * Bodies that can be sent twice without buffering a stream: none, a string, a Buffer or another
 * Uint8Array. A request with a streamed body (a Node stream, an async iterable, a web
 * ReadableStream, FormData: everything `fetch` sends with a body) is not mirrored, because copying
 * it would mean buffering or teeing the caller's upload; it is sent to its destination as usual.
 */
export function isReplayableBody(body: unknown): boolean {
  return body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
}

/**
 * Envoy's shadow authority: `-shadow` goes after the host name, before any port
 * (`reviews:9080` → `reviews-shadow:9080`, `[::1]:80` → `[::1]-shadow:80`).
 */
export function shadowAuthority(authority: string): string {
  let portStart = -1;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close > 0 && authority.charCodeAt(close + 1) === 58) portStart = close + 1;
  } else {
    const colon = authority.lastIndexOf(':');
    // More than one colon without brackets is a bare IPv6 address, which has no port.
    if (colon >= 0 && authority.indexOf(':') === colon) portStart = colon;
  }
  return portStart < 0 ? `${authority}-shadow` : `${authority.slice(0, portStart)}-shadow${authority.slice(portStart)}`;
}

/** Takes a mirrored response and drops it: the body is read (so the connection is reused) and errors are ignored. */
class DiscardHandler implements ResponseHandler {
  onRequestStart(): void {}
  onResponseStart(): void {}
  onResponseData(): void {}
  onResponseEnd(): void {}
  onResponseError(): void {}
}

const DISCARD = new DiscardHandler();

export interface MirrorDeps {
  readonly clusters: ClusterManager;
  readonly clock: MeshClock;
  readonly random: RandomSource;
  /**
   * Destinations without endpoints of their own (resolution NONE and the like): their
   * DestinationRule TLS and agents (which throw when they cannot be made: then no copy).
   */
  readonly destinations: Destinations;
}

/**
 * Sends copies of a request to a route's mirror destinations, fire and forget, as Envoy's
 * request_mirror_policies do: one random draw per request decides for every mirror (Envoy uses the
 * stream's stable random value), the copy carries the primary's final headers and path with
 * `-shadow` appended to its authority, and its response is dropped. Nothing about a copy reaches
 * the caller: it is dispatched after the primary, never awaited, and its errors are swallowed.
 */
export class Mirror {
  constructor(private readonly deps: MirrorDeps) {}

  send(
    mirrors: readonly CompiledMirror[],
    opts: OutboundRequest,
    scheme: string,
    requestPort: number,
    path: string,
    headers: Readonly<Record<string, string | string[]>>,
    timeoutMs: number,
    observer: RequestObserver,
  ): void {
    if (opts.upgrade || opts.method === 'CONNECT' || !isReplayableBody(opts.body)) return;
    const draw = this.deps.random();
    for (let i = 0; i < mirrors.length; i++) {
      const mirror = mirrors[i]!;
      if (draw >= mirror.fraction) continue;
      try {
        this.sendOne(mirror, opts, scheme, requestPort, path, headers, timeoutMs, observer);
      } catch {
        // A mirror must never fail the caller's request.
      }
    }
  }

  private sendOne(
    mirror: CompiledMirror,
    opts: OutboundRequest,
    scheme: string,
    requestPort: number,
    path: string,
    headers: Readonly<Record<string, string | string[]>>,
    timeoutMs: number,
    observer: RequestObserver,
  ): void {
    const host = typeof headers.host === 'string' ? headers.host : mirror.host;
    // Over TLS the copy presents the mirror's host name, not the `-shadow` authority undici would take.
    const copy = {
      ...opts,
      path,
      headers: { ...headers, host: shadowAuthority(host) },
      servername: isIP(mirror.host) ? undefined : mirror.host,
    } as OutboundRequest;
    const port = mirror.port ?? requestPort;
    const cluster = this.deps.clusters.get(mirror.host, mirror.subset, port);
    if (!cluster || cluster.passthrough) {
      // A subset without a cluster has no endpoints (Envoy: no cluster, no shadow).
      if (mirror.subset !== undefined && !cluster) return;
      const target = mirror.host.includes(':') ? `[${mirror.host}]` : mirror.host;
      // The destination's DestinationRule TLS, if any; TLS the mesh cannot make means no copy.
      const tls = cluster ? cluster.upstreamTls : this.deps.destinations.passthroughTls(mirror.host, port);
      if (tls?.kind === 'unsupported' || tls?.kind === 'unavailable') return;
      const originate = tls?.kind === 'originate' || tls?.kind === 'mesh' ? tls : undefined;
      const passthrough = originate ? this.deps.destinations.tlsAgent(originate) : this.deps.destinations.passthrough();
      const sent = { ...copy, origin: `${originate ? 'https' : scheme}://${target}:${port}` };
      observer.dispatchMirror(passthrough, sent, DISCARD, mirror.host);
      return;
    }
    if (cluster.warming) {
      // A cluster still waiting for its first DNS answer: mirror once it has one, or not at all.
      void cluster.warming.then(
        () => this.dispatchTo(mirror, copy, scheme, port, timeoutMs, observer),
        () => undefined,
      );
      return;
    }
    this.dispatchTo(mirror, copy, scheme, port, timeoutMs, observer);
  }

  private dispatchTo(mirror: CompiledMirror, copy: OutboundRequest, scheme: string, port: number, timeoutMs: number, observer: RequestObserver): void {
    try {
      const cluster = this.deps.clusters.get(mirror.host, mirror.subset, port);
      if (!cluster) return;
      // The copy is an upstream request of the mirror's cluster like any other (its balancer, limits
      // and outlier detection, as Envoy's shadow is), without retries, hash key or caller; with no
      // endpoint to pick, or TLS the mesh cannot originate, nothing is sent.
      new UpstreamRequest(
        DISCARD,
        copy,
        cluster,
        undefined,
        new MirrorPlan(this.deps.clock, this.deps.random, timeoutMs, scheme === 'https', observer, mirror.host),
      ).start();
    } catch {
      // As above: never the caller's problem.
    }
  }
}

/**
 * What a mirrored copy's request is sent with: no retries, hash key or caller. A class, as every
 * per-request object on the path is (docs/decisions.md, "No per-request literals").
 */
class MirrorPlan implements UpstreamRequestInit {
  readonly retry = undefined;
  readonly deadlineBound = false;
  readonly responseOps = undefined;
  readonly setCookie = undefined;
  readonly hash = undefined;
  readonly avoidPreviousHosts = false;
  readonly hedgeAfterMs = 0;
  readonly retriableHeaderNames = undefined;
  readonly body = undefined;
  readonly ticket = undefined;
  /** The copy's attempts are not the call's: only its mirror span is recorded (`mirrorOf`). */
  readonly observer: RequestObserver = NO_OBSERVER;
  readonly mirrorOf: MirrorOf;

  constructor(
    readonly clock: MeshClock,
    readonly random: RandomSource,
    readonly timeoutMs: number,
    readonly urlTls: boolean,
    observer: RequestObserver,
    host: string,
  ) {
    this.mirrorOf = new MirrorOf(observer, host);
  }
}

/** The primary request's observer, which records the copy as its mirror span, and the mirror's host. */
class MirrorOf {
  constructor(
    readonly observer: RequestObserver,
    readonly host: string,
  ) {}
}
