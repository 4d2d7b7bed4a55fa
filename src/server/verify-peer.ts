import type { TLSSocket } from 'node:tls';
import type { PeerRejection } from '../security/errors.js';
import type { PeerIdentity } from '../security/peer-identity.js';
import { makePeerIdentity } from '../security/peer-identity.js';
import type { TrustDomains } from '../security/spiffe-id.js';
import { spiffeIdOf } from '../security/spiffe-id.js';

export type PeerVerdict =
  { readonly ok: true; readonly identity: PeerIdentity } | { readonly ok: false; readonly reason: PeerRejection; readonly message: string };

/**
 * The checks on a TLS client after its handshake (made with `requestCert`): a certificate was
 * presented, it chains to the roots and is within its validity (OpenSSL's verdict, kept by
 * `rejectUnauthorized: false`), and it carries one SPIFFE ID of an accepted trust domain.
 */
export function verifyPeer(socket: TLSSocket, trustDomains: TrustDomains): PeerVerdict {
  const certificate = socket.getPeerX509Certificate();
  if (!certificate) return { ok: false, reason: 'no-certificate', message: 'the client presented no certificate; mutual TLS requires one' };
  if (!socket.authorized) {
    const code = String(socket.authorizationError);
    const reason: PeerRejection = code === 'CERT_HAS_EXPIRED' ? 'expired' : code === 'CERT_NOT_YET_VALID' ? 'not-yet-valid' : 'untrusted';
    const what =
      reason === 'expired'
        ? `expired at ${certificate.validToDate.toISOString()}`
        : reason === 'not-yet-valid'
          ? `not valid before ${certificate.validFromDate.toISOString()}`
          : "does not chain to the mesh's root certificates";
    const who = spiffeIdOf(certificate)?.uri ?? (certificate.subjectAltName || certificate.subject || 'no subject');
    return { ok: false, reason, message: `the client certificate (${who}) ${what} [${code}]` };
  }
  const id = spiffeIdOf(certificate);
  if (!id) return { ok: false, reason: 'identity', message: 'the client certificate has no SPIFFE ID (exactly one valid spiffe:// URI SAN)' };
  if (!trustDomains.accepts(id)) {
    return {
      ok: false,
      reason: 'identity',
      message: `the client's trust domain "${id.trustDomain}" (${id.uri}) is not accepted; accepted: ${[...trustDomains.all].join(', ')}`,
    };
  }
  return { ok: true, identity: makePeerIdentity(id, certificate) };
}
