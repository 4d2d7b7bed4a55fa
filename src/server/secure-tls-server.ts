import type { Server as HttpsServer } from 'node:https';
import type { Http2SecureServer } from 'node:http2';
import type { SecureContext, TLSSocket, TlsOptions } from 'node:tls';
import { Server as TlsServer } from 'node:tls';
import { PeerRejectedError, SecurityOptionError } from '../security/errors.js';
import { attachPeerIdentity } from '../security/peer-identity.js';
import type { InboundPolicy } from '../security/inbound/inbound-policy.js';
import { verifyPeer } from './verify-peer.js';

/** A server that terminates TLS itself. */
export type TlsTerminatingServer = HttpsServer | Http2SecureServer;

/**
 * Options for a server that terminates TLS itself (`https.createServer`, `http2.createSecureServer`,
 * Fastify's `https`): the workload's certificates in use now, client certificates requested and,
 * even before {@link secureTlsServer} is applied, verified against the mesh's roots. Clients that
 * send SNI get the current certificates after a rotation through `SNICallback`.
 */
export function inboundTlsOptions(policy: InboundPolicy): TlsOptions {
  const bundle = policy.certificates();
  if (!bundle)
    throw new SecurityOptionError(
      'no workload certificates to serve TLS with: configure `certificates` (see the certificateRejected event or mesh.certificates.lastError)',
    );
  return {
    cert: bundle.chainPem,
    key: bundle.keyPem,
    ca: bundle.rootsPem,
    requestCert: true,
    rejectUnauthorized: true,
    SNICallback: (_servername: string, callback: (error: Error | null, context?: SecureContext) => void) => {
      callback(null, (policy.certificates() ?? bundle).secureContext);
    },
  };
}

/**
 * Mesh checks on a server that terminates TLS itself, made with {@link inboundTlsOptions}: the
 * client's SPIFFE ID and trust domain checked and its identity attached before the server reads
 * a request, refusals counted with their reason, and the server's certificates replaced on each
 * rotation (`setSecureContext`, which replaces the context whole: the mesh's certificate, key and
 * roots). Such a server speaks TLS only: under PERMISSIVE or DISABLE it still requires mTLS, which
 * is stricter than asked, never weaker.
 */
export function secureTlsServer<S extends TlsTerminatingServer>(server: S, policy: InboundPolicy): S {
  const tls = server as unknown as TlsServer & { requestCert?: boolean; rejectUnauthorized?: boolean };
  if (!(server instanceof TlsServer)) throw new SecurityOptionError('not a TLS server');
  if (tls.requestCert !== true) {
    throw new SecurityOptionError('the server does not request client certificates: create it with mesh.tlsOptions() (mutual TLS needs them)');
  }
  const report = (socket: TLSSocket, verdict: ReturnType<typeof verifyPeer>): void => {
    const port = socket.localPort ?? 0;
    const mode = policy.mode(port);
    if (verdict.ok) {
      policy.report?.({ result: 'mtls', port, mode, identity: verdict.identity });
    } else {
      const error = new PeerRejectedError(verdict.reason, mode, port, socket.remoteAddress, verdict.message);
      policy.report?.({ result: 'rejected', port, mode, error });
    }
  };
  // Ahead of the server's own handler: a refused connection is closed before a request is read.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    const verdict = verifyPeer(socket, policy.trustDomains);
    if (verdict.ok) attachPeerIdentity(socket, verdict.identity);
    else socket.destroy();
    report(socket, verdict);
  });
  server.on('tlsClientError', (error: Error, socket: TLSSocket) => {
    report(socket, { ok: false, reason: 'handshake', message: `TLS handshake failed: ${error.message.trim()}` });
    socket.destroy();
  });
  // The checks above now run on every connection: let the handshake finish so that each refusal
  // is reported with its precise reason (expired, untrusted...). Should the property go unread,
  // the TLS layer keeps refusing unverified clients itself.
  tls.rejectUnauthorized = false;
  const rotate = (): void => {
    const bundle = policy.certificates();
    if (bundle) tls.setSecureContext({ cert: bundle.chainPem, key: bundle.keyPem, ca: bundle.rootsPem });
  };
  rotate();
  const stop = policy.onRotation?.(rotate);
  server.once('close', () => stop?.());
  return server;
}
