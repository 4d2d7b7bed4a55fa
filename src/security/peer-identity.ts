import type { X509Certificate } from 'node:crypto';
import type { SpiffeId } from './spiffe-id.js';
import { principalOf } from './spiffe-id.js';

/** The verified identity of the peer of an inbound mTLS connection. */
export interface PeerIdentity {
  /** `spiffe://cluster.local/ns/shop/sa/frontend` */
  readonly spiffeId: string;
  readonly trustDomain: string;
  /** From an Istio-style path `/ns/<ns>/sa/<sa>`; undefined for other SPIFFE paths. */
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;
  /** Istio's principal (the SPIFFE ID without `spiffe://`), as AuthorizationPolicy `principals` name it. */
  readonly principal: string;
  /** The peer's leaf certificate. */
  readonly certificate: X509Certificate;
}

/**
 * Kept on the connection's TLS socket under a registry symbol, so every copy of the library (ESM
 * and CJS builds) and HTTP/2's socket proxies see the same property.
 */
const PEER_IDENTITY: unique symbol = Symbol.for('sidecarless.peerIdentity.v1') as never;

interface Carrier {
  [PEER_IDENTITY]?: PeerIdentity;
}

/** Anything with the connection's socket: node:http and HTTP/2 requests, Fastify's request, a raw HTTP/2 stream. */
export type PeerIdentitySource = { readonly socket?: unknown } | { readonly session?: { readonly socket?: unknown } | undefined };

export function makePeerIdentity(id: SpiffeId, certificate: X509Certificate): PeerIdentity {
  return Object.freeze({
    spiffeId: id.uri,
    trustDomain: id.trustDomain,
    namespace: id.namespace,
    serviceAccount: id.serviceAccount,
    principal: principalOf(id),
    certificate,
  });
}

/** Records the verified identity on the connection's socket (before any request is read from it). */
export function attachPeerIdentity(socket: object, identity: PeerIdentity): void {
  Object.defineProperty(socket, PEER_IDENTITY, { value: identity, enumerable: false, configurable: false, writable: false });
}

/**
 * The verified peer identity of the connection a request came on: set for mTLS connections that the
 * mesh's inbound server accepted, undefined for plaintext ones (PERMISSIVE, DISABLE).
 */
export function peerIdentity(request: PeerIdentitySource): PeerIdentity | undefined {
  const socket = 'socket' in request && request.socket ? request.socket : 'session' in request ? request.session?.socket : undefined;
  if (typeof socket !== 'object' || socket === null) return undefined;
  return (socket as Carrier)[PEER_IDENTITY];
}
