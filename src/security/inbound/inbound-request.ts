import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { PeerIdentity } from '../peer-identity.js';
import { peerIdentity } from '../peer-identity.js';
import type { RouteRequest } from '../../match/route-request.js';

/** A node:http or node:http2 (compatibility API) request: what every integration hands over. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;

/** The JWT a RequestAuthentication verified for this request. */
export interface VerifiedJwt {
  /** `iss/sub`, Istio's request principal. */
  readonly principal: string;
  readonly issuer: string;
  /** The verified payload. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Claims matched as space-separated lists (`scope`, `permission` and the rule's `spaceDelimitedClaims`). */
  readonly spaceDelimited: ReadonlySet<string>;
}

/**
 * The framework-neutral view of one inbound request that every inbound layer reads: made once
 * per request, fields worked out on first use. The path is normalised per `pathNormalization`
 * before anything reads it.
 */
export class InboundRequest implements RouteRequest {
  readonly method: string;
  /** The normalised path, without query or fragment. */
  readonly path: string;
  /** The query string as sent, without `?`; '' when there is none. */
  readonly query: string;
  private portValue = -1;
  private sourceIpValue: string | undefined;
  /** Set by RequestAuthentication once a token is verified. */
  jwt: VerifiedJwt | undefined;
  /** Headers a layer adds to the application's response (ext authz `headersToDownstreamOnAllow`). */
  responseHeaders: Record<string, string> | undefined;
  private peerValue: PeerIdentity | null | undefined;
  private distinct: Record<string, string[] | undefined> | undefined;

  constructor(
    /** The node request (its headers are lower-cased by node). */
    readonly raw: NodeRequest,
    path: string,
    query: string,
    private readonly trustedProxies: number,
  ) {
    this.method = raw.method ?? 'GET';
    this.path = path;
    this.query = query;
  }

  /** The port the request came in on (the server's own port). */
  get port(): number {
    if (this.portValue < 0) this.portValue = this.raw.socket?.localPort ?? 0;
    return this.portValue;
  }

  get headers(): IncomingHttpHeaders {
    return this.raw.headers;
  }

  /**
   * A header's value as Envoy's matchers see it: repeated headers joined by `,` (node joins most
   * with `, `), undefined when absent. `name` is lower-case.
   */
  header(name: string): string | undefined {
    const value = this.raw.headers[name];
    if (value === undefined) return undefined;
    if (typeof value === 'string' && !value.includes(',')) return value;
    this.distinct ??= (this.raw as IncomingMessage).headersDistinct ?? {};
    const all = this.distinct[name];
    return all ? all.join(',') : Array.isArray(value) ? value.join(',') : value;
  }

  /** Sets (or with undefined removes) a request header the application will see. */
  setHeader(name: string, value: string | undefined): void {
    const headers = this.raw.headers as Record<string, string | string[] | undefined>;
    if (value === undefined) delete headers[name];
    else headers[name] = value;
    this.distinct = undefined;
    const raw = this.raw.rawHeaders;
    for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === name) raw.splice(i, 2);
    if (value !== undefined) raw.push(name, value);
  }

  /** `:authority` (HTTP/2) or `Host`, as sent. */
  get host(): string {
    return (this.raw.headers[':authority'] as string | undefined) ?? this.raw.headers.host ?? '';
  }

  get authority(): string {
    return this.host;
  }

  get scheme(): string {
    return this.secure ? 'https' : 'http';
  }

  /** The connection's peer address (Istio's `source.ip`). */
  get sourceIp(): string {
    // Node asks the socket (a native call) each time: once per request is enough.
    this.sourceIpValue ??= unmapped(this.raw.socket?.remoteAddress ?? '');
    return this.sourceIpValue;
  }

  /**
   * Istio's `remote.ip`: the client address Envoy derives from `x-forwarded-for` (the entry
   * `trustedProxies` from the right; Envoy's `xff_num_trusted_hops`), else the peer address.
   */
  get remoteIp(): string {
    const xff = this.header('x-forwarded-for');
    if (xff === undefined) return this.sourceIp;
    const entries = xff.split(',');
    const entry = entries[entries.length - 1 - this.trustedProxies];
    return entry === undefined ? this.sourceIp : unmapped(entry.trim());
  }

  /** The address the request came in on (Istio's `destination.ip`). */
  get destinationIp(): string {
    return unmapped(this.raw.socket?.localAddress ?? '');
  }

  /** The TLS server name the client asked for (Istio's `connection.sni`), '' without TLS. */
  get sni(): string {
    const socket = this.raw.socket as { servername?: unknown } | undefined;
    return typeof socket?.servername === 'string' ? socket.servername : '';
  }

  /** The verified mTLS identity of the connection, undefined in plaintext. */
  get peer(): PeerIdentity | undefined {
    if (this.peerValue === undefined) this.peerValue = peerIdentity(this.raw) ?? null;
    return this.peerValue ?? undefined;
  }

  get secure(): boolean {
    const socket = this.raw.socket as { encrypted?: unknown } | undefined;
    return socket?.encrypted === true;
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer of a dual-stack socket) as `10.0.0.1`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
