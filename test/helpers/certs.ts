import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';

/** A certificate and its key as PEM text and as files (what a DestinationRule names). */
export interface IssuedCert {
  readonly name: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  readonly key: string;
}

export interface IssueOptions {
  /** DNS subject alternative names. */
  readonly dns?: readonly string[];
  /** IP address subject alternative names. */
  readonly ips?: readonly string[];
  /** URI subject alternative names (SPIFFE identities, say). */
  readonly uris?: readonly string[];
  /** Extended key usage: a TLS server (default) or a TLS client certificate. */
  readonly usage?: 'server' | 'client';
  /** Valid only in 2020: expired long ago. */
  readonly expired?: boolean;
  /** Valid from this time on (default five minutes ago), for thirty days. */
  readonly notBefore?: Date;
}

const DAY_MS = 86_400_000;

/**
 * A certificate authority for the TLS origination tests, as files: server and client
 * certificates with the SANs asked for (no SPIFFE ID unless given as a URI), expired ones,
 * revocations and CRLs. Minted by the development CA (`src/security/dev-ca`), the one way tests
 * make certificates; `test/security/dev-ca.test.ts` cross-checks what it mints with the `openssl`
 * CLI. Keys are EC P-256. Everything lives under `dir`.
 */
export class TestCa {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  private readonly ca: DevCa;
  private readonly serials = new Map<string, Buffer>();
  private readonly revoked: Buffer[] = [];
  private issued = 0;

  private constructor(
    readonly dir: string,
    readonly name: string,
  ) {
    this.ca = DevCa.create({ commonName: name });
    this.certPath = join(dir, 'ca.pem');
    this.keyPath = join(dir, 'ca-key.pem');
    this.cert = this.ca.certificatePem;
    writeFileSync(this.certPath, this.cert);
    writeFileSync(this.keyPath, this.ca.keyPem, { mode: 0o600 });
  }

  /** A new CA in its own folder under `parent`. */
  static create(parent: string, name = 'sidecarless test CA'): TestCa {
    const dir = join(parent, name.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
    mkdirSync(dir, { recursive: true });
    return new TestCa(dir, name);
  }

  /** A certificate for `name` (its subject CN) signed by this CA. */
  issue(name: string, options: IssueOptions = {}): IssuedCert {
    const id = `${++this.issued}-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}`;
    const keyPath = join(this.dir, `${id}-key.pem`);
    const certPath = join(this.dir, `${id}.pem`);
    const validity = options.expired
      ? { notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-01-02T00:00:00Z') }
      : options.notBefore
        ? { notBefore: options.notBefore, notAfter: new Date(options.notBefore.getTime() + 30 * DAY_MS) }
        : { notBefore: new Date(Date.now() - 5 * 60_000), notAfter: new Date(Date.now() + 30 * DAY_MS) };
    const issued = this.ca.issue({
      spiffeId: null,
      commonName: name,
      dnsNames: options.dns ?? [],
      ips: options.ips ?? [],
      uris: options.uris ?? [],
      extendedKeyUsage: [options.usage === 'client' ? 'clientAuth' : 'serverAuth'],
      ...validity,
    });
    writeFileSync(certPath, issued.certificatePem);
    writeFileSync(keyPath, issued.keyPem, { mode: 0o600 });
    this.serials.set(certPath, issued.serial);
    return { name, certPath, keyPath, cert: issued.certificatePem, key: issued.keyPem };
  }

  /** Marks `cert` revoked; the next {@link crl} lists it. */
  revoke(cert: IssuedCert): void {
    const serial = this.serials.get(cert.certPath);
    if (!serial) throw new Error(`${cert.certPath} was not issued by ${this.name}`);
    this.revoked.push(serial);
  }

  /** A fresh CRL of this CA, written to a new file. */
  crl(): { readonly path: string; readonly pem: string } {
    const path = join(this.dir, `crl-${++this.issued}.pem`);
    const pem = this.ca.crl(this.revoked);
    writeFileSync(path, pem);
    return { path, pem };
  }
}
