import { createHash, createPublicKey, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import {
  bitString,
  boolean,
  children,
  explicit,
  implicitPrimitive,
  integer,
  namedBits,
  octetString,
  oid,
  printableString,
  readNode,
  sequence,
  set,
  time,
  tlv,
  utf8String,
} from './der.js';

/** The parts of a distinguished name the dev CA writes (in this order). */
export interface NameSpec {
  readonly country?: string;
  readonly organization?: string;
  readonly organizationalUnit?: string;
  readonly commonName?: string;
}

export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';
export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth';

export interface SubjectAltNames {
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
}

/** Everything that goes into one certificate. */
export interface CertificateSpec {
  /** Positive serial number, at most 20 bytes (RFC 5280). */
  readonly serial: Uint8Array;
  readonly subject: NameSpec;
  /** The issuer's encoded subject (a self-signed certificate passes its own). */
  readonly issuer: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The subject's key (its public half is certified; a private key may be passed). */
  readonly publicKey: KeyObject;
  /** The issuer's private key (ECDSA P-256/P-384 or RSA). */
  readonly signingKey: KeyObject;
  /** A CA certificate, optionally limiting how many intermediates may follow it. */
  readonly ca?: { readonly pathLength?: number };
  readonly keyUsage: readonly KeyUsage[];
  readonly extendedKeyUsage?: readonly ExtendedKeyUsage[];
  readonly subjectAltNames?: SubjectAltNames;
  /** The issuer's subject key identifier (omitted for a self-signed root). */
  readonly authorityKeyId?: Buffer;
}

const OID = {
  commonName: '2.5.4.3',
  country: '2.5.4.6',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  crlNumber: '2.5.29.20',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
} as const;

const KEY_USAGE_BITS: Record<KeyUsage, number> = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
};

/** The encoded Name; an empty spec gives the empty sequence (SPIFFE workload certificates). */
export function encodeName(name: NameSpec): Buffer {
  const rdns: Buffer[] = [];
  const add = (type: string, value: Buffer) => rdns.push(set(sequence(oid(type), value)));
  if (name.country !== undefined) add(OID.country, printableString(name.country));
  if (name.organization !== undefined) add(OID.organization, utf8String(name.organization));
  if (name.organizationalUnit !== undefined) add(OID.organizationalUnit, utf8String(name.organizationalUnit));
  if (name.commonName !== undefined) add(OID.commonName, utf8String(name.commonName));
  return sequence(...rdns);
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function subjectKeyId(key: KeyObject): Buffer {
  const spki = spkiDer(key);
  const [, bits] = children(spki, readNode(spki, 0));
  if (!bits) throw new RangeError('malformed public key');
  return createHash('sha1')
    .update(spki.subarray(bits.contentStart + 1, bits.end))
    .digest();
}

/** SubjectPublicKeyInfo of a key (a private key stands for its public half). */
function spkiDer(key: KeyObject): Buffer {
  return (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' });
}

/** The AlgorithmIdentifier and digest for a signing key. */
function signatureAlgorithm(key: KeyObject): { readonly id: Buffer; readonly digest: string } {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { id: sequence(oid(OID.ecdsaWithSha256)), digest: 'sha256' };
    if (curve === 'secp384r1') return { id: sequence(oid(OID.ecdsaWithSha384)), digest: 'sha384' };
    throw new RangeError(`unsupported EC curve ${String(curve)}: use P-256 or P-384`);
  }
  if (key.asymmetricKeyType === 'rsa') return { id: sequence(oid(OID.sha256WithRsa), tlv(0x05, Buffer.alloc(0))), digest: 'sha256' };
  throw new RangeError(`unsupported signing key type ${String(key.asymmetricKeyType)}`);
}

/** Wraps a to-be-signed structure into the signed one (certificates and CRLs have one shape). */
export function signStructure(tbs: Buffer, algorithm: Buffer, digest: string, key: KeyObject): Buffer {
  const signature = sign(digest, tbs, { key, dsaEncoding: 'der' });
  return sequence(tbs, algorithm, bitString(signature));
}

export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map((p) => Number(p)));
  if (!isIPv6(ip)) throw new RangeError(`not an IP address: ${ip}`);
  let text = ip;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = (v4[1] as string).split('.').map((p) => Number(p)) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

function generalNames(names: SubjectAltNames): Buffer {
  return sequence(
    ...(names.dnsNames ?? []).map((n) => implicitPrimitive(2, Buffer.from(n, 'latin1'))),
    ...(names.uris ?? []).map((u) => implicitPrimitive(6, Buffer.from(u, 'latin1'))),
    ...(names.ips ?? []).map((ip) => implicitPrimitive(7, ipBytes(ip))),
  );
}

/** A signed X.509 v3 certificate, DER-encoded. */
export function buildCertificate(spec: CertificateSpec): Buffer {
  const subject = encodeName(spec.subject);
  const algorithm = signatureAlgorithm(spec.signingKey);
  const extensions: Buffer[] = [];
  extensions.push(
    extension(
      OID.basicConstraints,
      true,
      spec.ca ? sequence(boolean(true), ...(spec.ca.pathLength !== undefined ? [integer(spec.ca.pathLength)] : [])) : sequence(),
    ),
  );
  extensions.push(extension(OID.keyUsage, true, namedBits(spec.keyUsage.map((u) => KEY_USAGE_BITS[u]))));
  if (spec.extendedKeyUsage && spec.extendedKeyUsage.length > 0) {
    extensions.push(extension(OID.extKeyUsage, false, sequence(...spec.extendedKeyUsage.map((u) => oid(OID[u])))));
  }
  const sans = spec.subjectAltNames;
  if (sans && (sans.uris?.length || sans.dnsNames?.length || sans.ips?.length)) {
    // RFC 5280 4.2.1.6: critical when the subject is empty, as in SPIFFE workload certificates.
    extensions.push(extension(OID.subjectAltName, subject.length === 2, generalNames(sans)));
  }
  extensions.push(extension(OID.subjectKeyId, false, octetString(subjectKeyId(spec.publicKey))));
  if (spec.authorityKeyId) extensions.push(extension(OID.authorityKeyId, false, sequence(implicitPrimitive(0, spec.authorityKeyId))));
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(spec.serial),
    algorithm.id,
    spec.issuer,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    subject,
    spkiDer(spec.publicKey),
    explicit(3, sequence(...extensions)),
  );
  return signStructure(tbs, algorithm.id, algorithm.digest, spec.signingKey);
}

/** One revoked certificate in a CRL. */
export interface RevokedEntry {
  readonly serial: Uint8Array;
  readonly revokedAt: Date;
}

export interface CrlSpec {
  readonly issuer: Buffer;
  readonly issuerKeyId: Buffer;
  readonly signingKey: KeyObject;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly number: number;
  readonly revoked: readonly RevokedEntry[];
}

/** A signed X.509 v2 CRL, DER-encoded (RFC 5280 5.1). */
export function buildCrl(spec: CrlSpec): Buffer {
  const algorithm = signatureAlgorithm(spec.signingKey);
  const revoked = spec.revoked.map((r) => sequence(integer(r.serial), time(r.revokedAt)));
  const tbs = sequence(
    integer(1),
    algorithm.id,
    spec.issuer,
    time(spec.thisUpdate),
    time(spec.nextUpdate),
    ...(revoked.length > 0 ? [sequence(...revoked)] : []),
    explicit(
      0,
      sequence(extension(OID.authorityKeyId, false, sequence(implicitPrimitive(0, spec.issuerKeyId))), extension(OID.crlNumber, false, integer(spec.number))),
    ),
  );
  return signStructure(tbs, algorithm.id, algorithm.digest, spec.signingKey);
}

/** PEM armour around DER. */
export function toPem(label: 'CERTIFICATE' | 'X509 CRL', der: Uint8Array): string {
  const base64 = Buffer.from(der).toString('base64');
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The subject Name (raw DER) and subject key identifier of a certificate, so that a CA loaded from
 * files can issue more certificates under its own name.
 */
export function issuerParts(certificateDer: Uint8Array): { readonly subject: Buffer; readonly keyId: Buffer | undefined } {
  const der = Buffer.from(certificateDer);
  const [tbsNode] = children(der, readNode(der, 0));
  if (!tbsNode) throw new RangeError('malformed certificate');
  const fields = children(der, tbsNode);
  // version [0] is present in v3 certificates; the subject is 5th after it.
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0;
  const subjectNode = fields[offset + 4];
  if (!subjectNode) throw new RangeError('malformed certificate');
  const subject = der.subarray(subjectNode.start, subjectNode.end);
  let keyId: Buffer | undefined;
  const extensionsNode = fields.find((f) => f.tag === 0xa3);
  if (extensionsNode) {
    const [list] = children(der, extensionsNode);
    for (const ext of list ? children(der, list) : []) {
      const parts = children(der, ext);
      const id = parts[0];
      const value = parts.at(-1);
      if (!id || !value || !der.subarray(id.start, id.end).equals(oid(OID.subjectKeyId))) continue;
      const inner = readNode(der, value.contentStart);
      keyId = der.subarray(inner.contentStart, inner.end);
    }
  }
  return { subject: Buffer.from(subject), keyId: keyId && Buffer.from(keyId) };
}
