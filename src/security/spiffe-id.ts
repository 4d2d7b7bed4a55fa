import type { X509Certificate } from 'node:crypto';
import { InvalidSpiffeIdError } from './errors.js';

/** A parsed SPIFFE ID; `namespace` and `serviceAccount` when the path is Istio's `/ns/<ns>/sa/<sa>`. */
export interface SpiffeId {
  /** `spiffe://<trust-domain><path>` as written in the certificate. */
  readonly uri: string;
  readonly trustDomain: string;
  /** The path, with its leading `/` (empty for a trust domain's own ID). */
  readonly path: string;
  readonly namespace: string | undefined;
  readonly serviceAccount: string | undefined;
}

const SCHEME = 'spiffe://';
const MAX_LENGTH = 2048;
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * Parses a SPIFFE ID by the SPIFFE ID specification: a lowercase trust domain of letters, digits,
 * `.`, `-` and `_`; path segments of letters, digits, `.`, `-` and `_`, none empty, `.` or `..`;
 * no query, fragment, port or user info. Throws {@link InvalidSpiffeIdError}.
 */
export function parseSpiffeId(value: string): SpiffeId {
  if (value.length > MAX_LENGTH) throw new InvalidSpiffeIdError(value, `longer than ${MAX_LENGTH} bytes`);
  if (!value.startsWith(SCHEME)) throw new InvalidSpiffeIdError(value, 'the scheme must be spiffe://');
  const rest = value.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain === '') throw new InvalidSpiffeIdError(value, 'the trust domain is empty');
  if (!TRUST_DOMAIN.test(trustDomain)) {
    throw new InvalidSpiffeIdError(value, 'the trust domain may hold only lowercase letters, digits, ".", "-" and "_" (no port, user info or uppercase)');
  }
  if (path !== '') {
    const segments = path.slice(1).split('/');
    for (const segment of segments) {
      if (segment === '') throw new InvalidSpiffeIdError(value, 'the path has an empty segment (a doubled or trailing "/")');
      if (segment === '.' || segment === '..') throw new InvalidSpiffeIdError(value, 'the path may not have "." or ".." segments');
      if (!SEGMENT.test(segment)) {
        throw new InvalidSpiffeIdError(value, 'path segments may hold only letters, digits, ".", "-" and "_" (no query or fragment)');
      }
    }
  }
  const istio = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(path);
  return { uri: value, trustDomain, path, namespace: istio?.[1], serviceAccount: istio?.[2] };
}

/** Like {@link parseSpiffeId}, undefined instead of throwing. */
export function tryParseSpiffeId(value: string): SpiffeId | undefined {
  try {
    return parseSpiffeId(value);
  } catch {
    return undefined;
  }
}

/** Istio's workload identity: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`. */
export function formatSpiffeId(parts: { readonly trustDomain: string; readonly namespace: string; readonly serviceAccount: string }): string {
  const uri = `${SCHEME}${parts.trustDomain}/ns/${parts.namespace}/sa/${parts.serviceAccount}`;
  parseSpiffeId(uri);
  return uri;
}

/** Istio's principal for a SPIFFE ID, as AuthorizationPolicy `principals` name it (no scheme). */
export function principalOf(id: SpiffeId): string {
  return id.uri.slice(SCHEME.length);
}

/** The URI SANs of a certificate (Node's `subjectAltName` text, quoted entries unescaped). */
export function uriSans(certificate: X509Certificate): string[] {
  const text = certificate.subjectAltName ?? '';
  const out: string[] = [];
  for (const match of text.matchAll(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const raw = match[1] as string;
    out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
  }
  return out;
}

/**
 * The certificate's SPIFFE ID: its one `spiffe://` URI SAN (an X.509-SVID has exactly one), or
 * undefined when it has none, several, or an invalid one.
 */
export function spiffeIdOf(certificate: X509Certificate): SpiffeId | undefined {
  const ids = uriSans(certificate).filter((u) => u.startsWith(SCHEME));
  return ids.length === 1 ? tryParseSpiffeId(ids[0] as string) : undefined;
}

/**
 * The trust domains a peer may belong to: the mesh's own and its aliases (Istio's
 * `trustDomainAliases`, for migrations between trust domains).
 */
export class TrustDomains {
  readonly all: ReadonlySet<string>;
  constructor(
    readonly trustDomain: string,
    readonly aliases: readonly string[] = [],
  ) {
    for (const td of [trustDomain, ...aliases]) {
      if (!TRUST_DOMAIN.test(td))
        throw new InvalidSpiffeIdError(`${SCHEME}${td}`, `trust domain ${JSON.stringify(td)} may hold only lowercase letters, digits, ".", "-" and "_"`);
    }
    this.all = new Set([trustDomain, ...aliases]);
  }

  accepts(id: SpiffeId): boolean {
    return this.all.has(id.trustDomain);
  }
}
