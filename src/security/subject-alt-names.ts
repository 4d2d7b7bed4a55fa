import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';

/** Node's `subjectaltname` entries: `DNS:a.example.com, IP Address:10.0.0.1, URI:"spiffe://..."`. */
const ENTRY = /(?:^|, )([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;

function entries(text: string | undefined): { readonly type: string; readonly value: string }[] {
  const out: { type: string; value: string }[] = [];
  if (!text) return out;
  for (const m of text.matchAll(ENTRY)) {
    const raw = m[2]!;
    out.push({ type: m[1]!, value: raw.startsWith('"') ? (JSON.parse(raw) as string) : raw });
  }
  return out;
}

/** A certificate's DNS name (possibly `*.example.com`) covers `name`, as Envoy's DNS SAN matcher. */
function dnsMatches(pattern: string, name: string): boolean {
  const p = pattern.toLowerCase();
  const n = name.toLowerCase();
  if (p === n) return true;
  if (!p.startsWith('*.')) return false;
  const dot = n.indexOf('.');
  return dot > 0 && n.slice(dot) === p.slice(1);
}

/**
 * Whether the certificate carries one of `names` (a DestinationRule's `subjectAltNames`): a DNS
 * name (a wildcard certificate name covers one label), an IP address or a URI (SPIFFE identities),
 * each compared exactly, as Envoy's `match_typed_subject_alt_names` does for Istio.
 */
export function carriesSubjectAltName(cert: PeerCertificate, names: readonly string[]): boolean {
  const sans = entries(cert.subjectaltname);
  let x509: X509Certificate | undefined;
  for (const name of names) {
    if (isIP(name)) {
      // Node prints IPv6 addresses in full: let OpenSSL compare the bytes.
      x509 ??= new X509Certificate(cert.raw);
      if (x509.checkIP(name) !== undefined) return true;
      continue;
    }
    for (const san of sans) {
      if (san.type === 'DNS' ? dnsMatches(san.value, name) : san.type === 'URI' && san.value === name) return true;
    }
  }
  return false;
}

/** `checkServerIdentity` for a rule with `subjectAltNames`: they replace the host name check. */
export function subjectAltNameCheck(names: readonly string[], source: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    if (carriesSubjectAltName(cert, names)) return undefined;
    const error = new Error(
      `the server certificate's subject alternative names (${cert.subjectaltname || 'none'}) include none of subjectAltNames [${names.join(', ')}] of ${source}`,
    );
    (error as Error & { code: string }).code = 'ERR_TLS_CERT_ALTNAME_INVALID';
    return error;
  };
}
