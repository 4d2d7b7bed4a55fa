import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { SecureContext } from 'node:tls';
import { CertificateError } from './errors.js';
import type { SpiffeId } from './spiffe-id.js';
import { spiffeIdOf } from './spiffe-id.js';

/** One file's content as read from a certificate source. */
export interface CertificateFile {
  /** The path (or Secret key) as the user knows it, for messages. */
  readonly path: string;
  readonly pem: string;
}

/** The three parts of a workload's credentials, as read, not yet checked. */
export interface CertificateFiles {
  /** The leaf certificate, then any intermediates. */
  readonly chain: CertificateFile;
  readonly key: CertificateFile;
  /** The trust roots peers' certificates are verified against (several for a SPIFFE bundle). */
  readonly roots: CertificateFile;
}

/**
 * Workload credentials that passed every check: the key matches the leaf, the leaf and its
 * intermediates are within their validity, and the chain leads to one of the roots. Immutable; a
 * rotation makes a new one. Outbound mTLS takes `chainPem`, `keyPem`, `rootsPem` (or the secure
 * context) and `identity` from here.
 */
export interface CertificateBundle {
  /** Where it came from (the source's id). */
  readonly source: string;
  readonly files: { readonly chain: string; readonly key: string; readonly roots: string };
  /** Leaf first, then intermediates (a root at the end of the file is dropped from here). */
  readonly chainPem: string;
  readonly keyPem: string;
  readonly rootsPem: string;
  readonly leaf: X509Certificate;
  readonly chain: readonly X509Certificate[];
  readonly roots: readonly X509Certificate[];
  /** The leaf's SPIFFE ID (its one `spiffe://` URI SAN), if it has one. */
  readonly identity: SpiffeId | undefined;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 fingerprint of the leaf: tells two bundles apart. */
  readonly fingerprint: string;
  /** Certificate, key and roots in one context, for TLS servers and clients. */
  readonly secureContext: SecureContext;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** The PEM blocks of a text with their labels. */
export function pemBlocks(text: string): { readonly label: string; readonly pem: string }[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => ({ label: m[1] as string, pem: m[0] }));
}

function certificates(file: CertificateFile, what: string): X509Certificate[] {
  const blocks = pemBlocks(file.pem).filter((b) => b.label === 'CERTIFICATE');
  if (blocks.length === 0) {
    throw new CertificateError('invalid', file.path, `no PEM certificate (-----BEGIN CERTIFICATE-----) found; expected ${what}`);
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block.pem);
    } catch (error) {
      throw new CertificateError('invalid', file.path, `certificate #${i + 1} is not a valid X.509 certificate (${(error as Error).message})`, {
        cause: error,
      });
    }
  });
}

function privateKey(file: CertificateFile): KeyObject {
  try {
    return createPrivateKey(file.pem);
  } catch (error) {
    throw new CertificateError('invalid', file.path, `not a PEM private key, or an encrypted one (${(error as Error).message})`, { cause: error });
  }
}

function describe(certificate: X509Certificate): string {
  const subject = (certificate.subject ?? '').replace(/\n/g, ', ');
  const id = spiffeIdOf(certificate)?.uri;
  return `${subject || id || 'certificate'} (serial ${certificate.serialNumber})`;
}

function checkValidity(certificate: X509Certificate, file: string, position: string, now: number): void {
  if (now < certificate.validFromDate.getTime()) {
    throw new CertificateError('not-yet-valid', file, `${position} ${describe(certificate)} is not valid before ${certificate.validFromDate.toISOString()}`, {
      validFrom: certificate.validFromDate,
    });
  }
  if (now > certificate.validToDate.getTime()) {
    throw new CertificateError('expired', file, `${position} ${describe(certificate)} expired at ${certificate.validToDate.toISOString()}`);
  }
}

function issuedBy(child: X509Certificate, parent: X509Certificate): boolean {
  return child.checkIssued(parent) && child.verify(parent.publicKey);
}

/**
 * Checks a bundle as read and builds its TLS context, or throws a {@link CertificateError} naming
 * the file and what is wrong with it. `now` is wall-clock milliseconds.
 */
export function validateBundle(source: string, files: CertificateFiles, now: number): CertificateBundle {
  const chain = certificates(files.chain, 'the workload certificate, then its intermediates');
  const key = privateKey(files.key);
  const roots = certificates(files.roots, 'the root certificates peers are verified against');
  const leaf = chain[0] as X509Certificate;
  if (!leaf.checkPrivateKey(key)) {
    throw new CertificateError(
      'key-mismatch',
      files.key.path,
      `the private key does not belong to the certificate in ${files.chain.path} (${describe(leaf)}); certificate and key must be replaced together`,
    );
  }
  // A chain file may end with the root itself (Istio's cert-chain.pem with a plugged-in CA).
  const rootPrints = new Set(roots.map((r) => r.fingerprint256));
  const presented = chain.length > 1 && rootPrints.has((chain.at(-1) as X509Certificate).fingerprint256) ? chain.slice(0, -1) : chain;
  presented.forEach((c, i) => checkValidity(c, files.chain.path, i === 0 ? 'the certificate' : `intermediate #${i}`, now));
  for (let i = 0; i + 1 < chain.length; i++) {
    if (!issuedBy(chain[i] as X509Certificate, chain[i + 1] as X509Certificate)) {
      throw new CertificateError(
        'untrusted-chain',
        files.chain.path,
        `certificate #${i + 1} (${describe(chain[i] as X509Certificate)}) is not signed by certificate #${i + 2} (${describe(chain[i + 1] as X509Certificate)}); the chain must run from the leaf towards the root`,
      );
    }
  }
  const last = chain.at(-1) as X509Certificate;
  const anchor = rootPrints.has(last.fingerprint256) ? last : roots.find((r) => issuedBy(last, r));
  if (!anchor) {
    throw new CertificateError(
      'untrusted-chain',
      files.chain.path,
      `the chain does not lead to any root in ${files.roots.path}: ${describe(last)} is issued by "${last.issuer.replace(/\n/g, ', ')}", which is not one of its ${roots.length} root(s)`,
    );
  }
  checkValidity(anchor, files.roots.path, 'the root', now);
  let secureContext: SecureContext;
  try {
    secureContext = createSecureContext({ cert: presented.map((c) => c.toString()).join(''), key: files.key.pem, ca: files.roots.pem });
  } catch (error) {
    throw new CertificateError('invalid', files.chain.path, `TLS refuses the certificate and key: ${(error as Error).message}`, { cause: error });
  }
  return {
    source,
    files: { chain: files.chain.path, key: files.key.path, roots: files.roots.path },
    chainPem: presented.map((c) => c.toString()).join(''),
    keyPem: files.key.pem,
    rootsPem: files.roots.pem,
    leaf,
    chain: presented,
    roots,
    identity: spiffeIdOf(leaf),
    notBefore: leaf.validFromDate,
    notAfter: leaf.validToDate,
    fingerprint: leaf.fingerprint256,
    secureContext,
  };
}
