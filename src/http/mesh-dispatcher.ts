import { isIP } from 'node:net';
import { Dispatcher } from 'undici';
import { MeshClosedError } from '../errors.js';
import type { Origin } from '../outbound/call.js';
import { invalidRequest } from '../outbound/caller-errors.js';
import type { OutboundTrafficPolicy } from '../outbound/context.js';
import { sendLocalError } from '../outbound/local-reply.js';
import type { OutboundOptions } from '../outbound/outbound-path.js';
import { OutboundPath } from '../outbound/outbound-path.js';
import { isLegacyHandler, LegacyHandlerAdapter } from './legacy-handler.js';

export type { OutboundTrafficPolicy };

export interface MeshDispatcherOptions extends OutboundOptions {
  /** How long close() lets requests in flight finish before aborting them (default 5000 ms). */
  readonly drainTimeoutMs?: number;
}

/** Istio's terminationDrainDuration: requests in flight get 5 s once the mesh closes. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 5_000;

/**
 * The undici Dispatcher of the mesh: `fetch(url, { dispatcher })`, `undici.request` and
 * `setGlobalDispatcher` all arrive here, and each request goes down the outbound stack
 * (src/outbound/stack.ts), which does what a sidecar does with it.
 */
export class MeshDispatcher extends Dispatcher {
  private readonly origins = new Map<string, Origin>();
  private lastOriginKey: string | undefined;
  private lastOrigin: Origin | undefined;
  private closed = false;
  /** close() or destroy() under way (or done). */
  private closing: Promise<void> | undefined;
  private readonly path: OutboundPath;

  constructor(private readonly options: MeshDispatcherOptions) {
    super();
    this.path = new OutboundPath(options);
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    // Node's built-in fetch (undici 7) hands `fetch(url, { dispatcher })` a handler of the old shape.
    if (isLegacyHandler(handler)) handler = new LegacyHandlerAdapter(handler);
    try {
      if (this.closed) throw new MeshClosedError();
      this.path.send(opts, handler, this.origin(opts.origin));
    } catch (error) {
      sendLocalError(handler, error instanceof Error ? error : new Error(String(error)));
    }
    return true;
  }

  /**
   * New requests fail with MeshClosedError from now on; requests in flight start nothing new (no
   * retry, hedge, back-off or fault delay) and get the drain period to finish, after which they
   * are aborted with MeshClosedError. Resolves once they are done and every pool is released.
   */
  override close(): Promise<void>;
  override close(callback: () => void): void;
  override close(callback?: () => void): Promise<void> | void {
    this.closed = true;
    this.closing ??= this.path.close(this.options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
    if (callback) void this.closing.then(callback);
    else return this.closing;
  }

  /** close() without the drain period: requests in flight fail with MeshClosedError at once. */
  override destroy(): Promise<void>;
  override destroy(err: Error | null): Promise<void>;
  override destroy(callback: () => void): void;
  override destroy(err: Error | null, callback: () => void): void;
  override destroy(errOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    const cb = typeof errOrCallback === 'function' ? errOrCallback : callback;
    this.closed = true;
    this.closing ??= this.path.close(0);
    if (cb) void this.closing.then(cb);
    else return this.closing;
  }

  private origin(raw: string | URL | undefined): Origin {
    const key = typeof raw === 'string' ? raw : raw ? raw.origin : '';
    // undici hands a new origin string per request (built by concatenation): comparing it with
    // the last one is cheaper than flattening and hashing it for the map.
    if (key === this.lastOriginKey) return this.lastOrigin!;
    let origin = this.origins.get(key);
    if (!origin) {
      let url: URL;
      try {
        url = new URL(key);
      } catch (error) {
        throw invalidRequest(new Error(`invalid origin ${JSON.stringify(key)}`, { cause: error }));
      }
      const scheme = url.protocol.slice(0, -1);
      const hostname = url.hostname;
      origin = {
        scheme,
        hostname,
        port: url.port ? Number(url.port) : scheme === 'https' ? 443 : 80,
        authority: url.host,
        // Given to undici once here so it does not derive it from the Host header on every request.
        servername: isIP(hostname.replace(/^\[|\]$/g, '')) ? undefined : hostname,
      };
      if (this.origins.size > 10_000) this.origins.clear();
      this.origins.set(key, origin);
    }
    this.lastOriginKey = key;
    this.lastOrigin = origin;
    return origin;
  }
}
