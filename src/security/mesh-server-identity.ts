import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { MeshTls } from './mesh-tls.js';
import { spiffeIdOf } from './spiffe-id.js';
import { carriesSubjectAltName } from './subject-alt-names.js';

function refusal(message: string): Error {
  const error = new Error(message);
  (error as Error & { code: string }).code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  return error;
}

/**
 * `checkServerIdentity` for mesh mTLS, run once the chain has verified against the mesh's roots:
 * the server certificate must carry one of the expected identities (the rule's
 * `subjectAltNames`, else the destination's service accounts), compared exactly as Envoy's
 * `match_subject_alt_names`; with none expected, a SPIFFE ID of the mesh's trust domain or an
 * alias. The host name is never checked: mesh certificates name workloads, not hosts.
 */
export function meshServerIdentityCheck(tls: MeshTls): (host: string, cert: PeerCertificate) => Error | undefined {
  const expected = tls.subjectAltNames;
  if (expected.length > 0) {
    return (_host, cert) =>
      carriesSubjectAltName(cert, expected)
        ? undefined
        : refusal(
            `the server certificate's identities (${cert.subjectaltname || 'none'}) include none of those expected for this destination [${expected.join(', ')}] (${tls.source}, SNI ${tls.sni})`,
          );
  }
  return (_host, cert) => {
    const id = spiffeIdOf(new X509Certificate(cert.raw));
    if (!id)
      return refusal(
        `the server certificate carries no SPIFFE ID (${cert.subjectaltname || 'no subject alternative names'}); a workload of the mesh must (${tls.source}, SNI ${tls.sni})`,
      );
    if (!tls.trustDomains.accepts(id)) {
      return refusal(
        `the server's SPIFFE ID ${id.uri} is of trust domain "${id.trustDomain}", which the mesh does not accept (accepted: ${[...tls.trustDomains.all].join(', ')}; ${tls.source}, SNI ${tls.sni})`,
      );
    }
    return undefined;
  };
}
