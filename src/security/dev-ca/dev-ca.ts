import { createPrivateKey, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { formatSpiffeId } from '../spiffe-id.js';
import type { ExtendedKeyUsage } from './x509.js';
import { buildCertificate, buildCrl, encodeName, issuerParts, subjectKeyId, toPem } from './x509.js';

/** Said wherever the development CA writes or prints something. */
export const DEV_CA_WARNING =
  'sidecarless development CA: for local development and tests only, NOT for production (its key sits in plain files and nothing revokes or rotates it)';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface DevCaOptions {
  /** The trust domain workload certificates get by default, also the CA's organization. Default `cluster.local`. */
  readonly trustDomain?: string;
  /** Default `sidecarless development CA`. */
  readonly commonName?: string;
  /** Default: an hour ago (tolerates clock skew between processes). */
  readonly notBefore?: Date;
  /** Default: ten years after `notBefore`. */
  readonly notAfter?: Date;
  /** The CA's key; default a new ECDSA P-256 key. */
  readonly key?: KeyObject;
}

export interface IntermediateOptions extends DevCaOptions {
  /** Default `sidecarless development intermediate CA`. */
  readonly commonName?: string;
}

export interface WorkloadOptions {
  /**
   * The whole SPIFFE ID; by default it is built from the trust domain, namespace and service
   * account. `null`: no SPIFFE ID at all (a plain TLS certificate).
   */
  readonly spiffeId?: string | null;
  /** Default: the CA's trust domain. */
  readonly trustDomain?: string;
  /** Default `default`. */
  readonly namespace?: string;
  /** Default `default`. */
  readonly serviceAccount?: string;
  /** More URI SANs after the SPIFFE ID. */
  readonly uris?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ips?: readonly string[];
  /** Empty by default, as in Istio's workload certificates (the identity is the URI SAN). */
  readonly commonName?: string;
  /** Default: five minutes ago. Any date works, so tests can mint not-yet-valid certificates. */
  readonly notBefore?: Date;
  /** Default: 24 hours after `notBefore` (Istio's workload certificate lifetime). Past dates mint expired ones. */
  readonly notAfter?: Date;
  /** The workload's key; default a new ECDSA P-256 key. */
  readonly key?: KeyObject;
  /** Default both `serverAuth` and `clientAuth`, as mesh workloads are both. */
  readonly extendedKeyUsage?: readonly ExtendedKeyUsage[];
}

/** A minted workload certificate with its key and chain, in PEM. */
export interface IssuedCertificate {
  /** The leaf certificate alone. */
  readonly certificatePem: string;
  /** Leaf, then the intermediates up to (not including) the root: Istio's `cert-chain.pem`. */
  readonly chainPem: string;
  /** PKCS#8 private key. */
  readonly keyPem: string;
  /** The root certificate the chain leads to: Istio's `root-cert.pem`. */
  readonly rootPem: string;
  readonly serial: Buffer;
  readonly spiffeId: string | undefined;
  readonly certificate: X509Certificate;
}

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
}

function serialNumber(): Buffer {
  const serial = randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x01;
  return serial;
}

/**
 * A development certificate authority: mints real X.509 certificates (ECDSA P-256) with SPIFFE IDs,
 * intermediates and CRLs, for the examples and tests. See {@link DEV_CA_WARNING}.
 */
export class DevCa {
  readonly certificatePem: string;
  readonly keyPem: string;
  readonly certificate: X509Certificate;
  private readonly subject: Buffer;
  private readonly keyId: Buffer;
  private crlNumber = 1;

  private constructor(
    certificateDer: Buffer,
    private readonly key: KeyObject,
    readonly trustDomain: string,
    /** Intermediates between this CA and the root, this CA first (empty for a root). */
    private readonly parents: readonly string[],
    /** The root of this CA's hierarchy (itself for a root). */
    readonly rootPem: string,
  ) {
    this.certificatePem = toPem('CERTIFICATE', certificateDer);
    this.keyPem = key.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.certificate = new X509Certificate(certificateDer);
    const parts = issuerParts(certificateDer);
    this.subject = parts.subject;
    this.keyId = parts.keyId ?? subjectKeyId(key);
  }

  /** A new self-signed root CA. */
  static create(options: DevCaOptions = {}): DevCa {
    const key = options.key ?? newKey();
    const trustDomain = options.trustDomain ?? 'cluster.local';
    const notBefore = options.notBefore ?? new Date(Date.now() - HOUR_MS);
    const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 3650 * DAY_MS);
    const name = { organization: trustDomain, commonName: options.commonName ?? 'sidecarless development CA' };
    const der = buildCertificate({
      serial: serialNumber(),
      subject: name,
      issuer: encodeName(name),
      notBefore,
      notAfter,
      publicKey: key,
      signingKey: key,
      ca: {},
      keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
    });
    const pem = toPem('CERTIFICATE', der);
    return new DevCa(der, key, trustDomain, [], pem);
  }

  /**
   * A CA from its certificate and key (PEM), as `sidecarless certs` keeps it on disk. It is taken
   * as a root: certificates it issues chain to it alone.
   */
  static load(certificatePem: string, keyPem: string): DevCa {
    const certificate = new X509Certificate(certificatePem);
    const key = createPrivateKey(keyPem);
    if (!certificate.ca) throw new RangeError('the certificate is not a CA certificate (basicConstraints CA:TRUE)');
    if (!certificate.checkPrivateKey(key)) throw new RangeError('the key does not belong to the CA certificate');
    const organization = /^O=(.*)$/m.exec(certificate.subject)?.[1];
    return new DevCa(certificate.raw, key, organization ?? 'cluster.local', [], certificate.toString());
  }

  /** An intermediate CA signed by this one (SPIFFE-style bundles: the chain carries it). */
  intermediate(options: IntermediateOptions = {}): DevCa {
    const key = options.key ?? newKey();
    const trustDomain = options.trustDomain ?? this.trustDomain;
    const notBefore = options.notBefore ?? new Date(Date.now() - HOUR_MS);
    const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 365 * DAY_MS);
    const der = buildCertificate({
      serial: serialNumber(),
      subject: { organization: trustDomain, commonName: options.commonName ?? 'sidecarless development intermediate CA' },
      issuer: this.subject,
      notBefore,
      notAfter,
      publicKey: key,
      signingKey: this.key,
      ca: {},
      keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
      authorityKeyId: this.keyId,
    });
    const parents = this.isRoot ? [] : [this.certificatePem, ...this.parents];
    return new DevCa(der, key, trustDomain, parents, this.rootPem);
  }

  private get isRoot(): boolean {
    return this.rootPem === this.certificatePem;
  }

  /** Mints a workload certificate (server and client use, SPIFFE ID as URI SAN). */
  issue(options: WorkloadOptions = {}): IssuedCertificate {
    const key = options.key ?? newKey();
    const spiffeId =
      options.spiffeId === null
        ? undefined
        : (options.spiffeId ??
          formatSpiffeId({
            trustDomain: options.trustDomain ?? this.trustDomain,
            namespace: options.namespace ?? 'default',
            serviceAccount: options.serviceAccount ?? 'default',
          }));
    const notBefore = options.notBefore ?? new Date(Date.now() - 5 * 60_000);
    const notAfter = options.notAfter ?? new Date(notBefore.getTime() + DAY_MS);
    const serial = serialNumber();
    const der = buildCertificate({
      serial,
      subject: options.commonName !== undefined ? { commonName: options.commonName } : {},
      issuer: this.subject,
      notBefore,
      notAfter,
      publicKey: key,
      signingKey: this.key,
      keyUsage: ['digitalSignature', 'keyEncipherment'],
      extendedKeyUsage: options.extendedKeyUsage ?? ['serverAuth', 'clientAuth'],
      subjectAltNames: {
        uris: [...(spiffeId !== undefined ? [spiffeId] : []), ...(options.uris ?? [])],
        dnsNames: options.dnsNames ?? [],
        ips: options.ips ?? [],
      },
      authorityKeyId: this.keyId,
    });
    const certificatePem = toPem('CERTIFICATE', der);
    const intermediates = this.isRoot ? [] : [this.certificatePem, ...this.parents];
    return {
      certificatePem,
      chainPem: [certificatePem, ...intermediates].join(''),
      keyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
      rootPem: this.rootPem,
      serial,
      spiffeId,
      certificate: new X509Certificate(der),
    };
  }

  /** A CRL (PEM) signed by this CA revoking the given serial numbers. */
  crl(revoked: readonly Uint8Array[], options: { readonly thisUpdate?: Date; readonly nextUpdate?: Date } = {}): string {
    const thisUpdate = options.thisUpdate ?? new Date(Date.now() - 60_000);
    const der = buildCrl({
      issuer: this.subject,
      issuerKeyId: this.keyId,
      signingKey: this.key,
      thisUpdate,
      nextUpdate: options.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * DAY_MS),
      number: this.crlNumber++,
      revoked: revoked.map((serial) => ({ serial, revokedAt: thisUpdate })),
    });
    return toPem('X509 CRL', der);
  }
}
