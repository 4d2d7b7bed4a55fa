import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { buildConnector, Dispatcher } from 'undici';
import { Client } from 'undici';
import type { CancelTimer, MeshClock } from '../clock.js';
import { Http2PingTimeoutError } from './errors.js';

/** An undici Pool `factory`: builds each Client of the pool. */
export type ClientFactory = (origin: URL, options: object) => Dispatcher;

/**
 * `http2KeepAlive.timeout` (Envoy `connection_keepalive.timeout`): undici sends a PING every
 * `interval` and emits 'ping' on its ACK, but never gives up on one. The pool's Clients are built
 * here so each connection gets a watch: when neither an ACK nor any other frame arrives within
 * `interval + timeout` of the last ACK (or of the connect), the connection is destroyed; the Client
 * reconnects for the next request, as Envoy opens a new connection.
 */
export function pingTimeoutFactory(intervalMs: number, timeoutMs: number, clock: MeshClock): ClientFactory {
  const limitMs = Math.max(1, Math.round(intervalMs + timeoutMs));
  const message = `HTTP/2 PING not answered within ${Math.round(timeoutMs)} ms (http2KeepAlive.timeout)`;
  return (origin, options) => {
    const watch = new PingWatch(limitMs, message, clock);
    // A Pool always hands its Clients a connector function (its own or the one it was given).
    const connect = (options as { connect: buildConnector.connector }).connect;
    const client = new Client(origin, { ...options, connect: watch.wrap(connect) });
    client.on('connect', watch.connected).on('disconnect', watch.disconnected);
    (client as NodeJS.EventEmitter).on('ping', watch.answered);
    return client;
  };
}

/** One Client's current connection and its timer (per connection, never per request). */
class PingWatch {
  private socket: Socket | TLSSocket | undefined = undefined;
  private timer: CancelTimer | undefined = undefined;
  private bytesRead = 0;
  private answeredSince = false;
  /** The connection an expired timer is about to judge (a reconnect in between is not judged). */
  private suspect: Socket | TLSSocket | undefined = undefined;

  constructor(
    private readonly limitMs: number,
    private readonly message: string,
    private readonly clock: MeshClock,
  ) {}

  wrap(connect: buildConnector.connector): buildConnector.connector {
    return (options, callback) =>
      connect(options, (...result) => {
        if (result[1]) this.socket = result[1];
        callback(...result);
      });
  }

  readonly connected = (): void => {
    const socket = this.socket;
    this.stop();
    // Over TLS the peer may have chosen HTTP/1.1, which has no PINGs to wait for.
    if (!socket || ('alpnProtocol' in socket && socket.alpnProtocol !== 'h2')) return;
    this.bytesRead = socket.bytesRead;
    this.arm();
  };

  readonly answered = (): void => {
    if (!this.timer || !this.socket) return;
    this.answeredSince = true;
    this.bytesRead = this.socket.bytesRead;
    this.arm();
  };

  readonly disconnected = (): void => {
    this.stop();
    this.socket = undefined;
  };

  /** (Re)starts the wait: once per connect and per PING ACK, never per request. */
  private arm(): void {
    this.timer?.();
    this.timer = this.clock.schedule(this.limitMs, this.expired, 'background');
  }

  private readonly expired = (): void => {
    this.answeredSince = false;
    this.suspect = this.socket;
    // Timers run before I/O: after a stalled event loop an ACK may be waiting unread. Judge once
    // the pending reads are in (immediates run after the poll phase).
    setImmediate(this.judge);
  };

  private readonly judge = (): void => {
    const socket = this.socket;
    if (!socket || socket !== this.suspect || socket.destroyed || !this.timer || this.answeredSince) return;
    // As in Envoy, any frame received extends the wait: an ACK queued behind data is not a dead peer.
    if (socket.bytesRead !== this.bytesRead) {
      this.bytesRead = socket.bytesRead;
      this.arm();
      return;
    }
    socket.destroy(new Http2PingTimeoutError(this.message));
  };

  private stop(): void {
    this.timer?.();
    this.timer = undefined;
  }
}
