import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemTool } from './system-tools.js';

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
}

/**
 * A real certificate authority for tests, run with the `openssl` CLI (node:crypto cannot sign
 * certificates): it issues server and client certificates with the SANs asked for, expired ones,
 * revokes them and writes CRLs. Keys are EC P-256 (fast to make). Everything lives under `dir`.
 */
export class TestCa {
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: string;
  private readonly config: string;
  private issued = 0;

  private constructor(
    readonly dir: string,
    readonly name: string,
  ) {
    this.certPath = join(dir, 'ca.pem');
    this.keyPath = join(dir, 'ca-key.pem');
    this.config = join(dir, 'ca.cnf');
    mkdirSync(join(dir, 'newcerts'), { recursive: true });
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial'), '1000\n');
    writeFileSync(join(dir, 'crlnumber'), '1000\n');
    writeFileSync(this.config, caConfig(dir));
    openssl(['req', '-x509', '-new', ...EC_KEY, '-nodes', '-keyout', this.keyPath, '-out', this.certPath, '-subj', `/CN=${name}`, '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    this.cert = readFileSync(this.certPath, 'utf8');
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
    const csrPath = join(this.dir, `${id}.csr`);
    const certPath = join(this.dir, `${id}.pem`);
    const extPath = join(this.dir, `${id}.ext`);
    const sans = [
      ...(options.dns ?? []).map((d) => `DNS:${d}`),
      ...(options.ips ?? []).map((ip) => `IP:${ip}`),
      ...(options.uris ?? []).map((u) => `URI:${u}`),
    ];
    writeFileSync(extPath, [
      '[ext]',
      'basicConstraints = CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      `extendedKeyUsage = ${options.usage === 'client' ? 'clientAuth' : 'serverAuth'}`,
      ...(sans.length > 0 ? [`subjectAltName = ${sans.join(',')}`] : []),
      '',
    ].join('\n'));
    openssl(['req', '-new', ...EC_KEY, '-nodes', '-keyout', keyPath, '-out', csrPath, '-subj', `/CN=${name}`]);
    const validity = options.expired ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z'] : ['-days', '30'];
    openssl(['ca', '-batch', '-config', this.config, '-in', csrPath, '-out', certPath, '-extfile', extPath, '-extensions', 'ext', '-notext', ...validity]);
    return { name, certPath, keyPath, cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
  }

  /** Marks `cert` revoked; the next {@link crl} lists it. */
  revoke(cert: IssuedCert): void {
    openssl(['ca', '-config', this.config, '-revoke', cert.certPath]);
  }

  /** A fresh CRL of this CA, written to a new file. */
  crl(): { readonly path: string; readonly pem: string } {
    const path = join(this.dir, `crl-${++this.issued}.pem`);
    openssl(['ca', '-config', this.config, '-gencrl', '-out', path]);
    return { path, pem: readFileSync(path, 'utf8') };
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

function openssl(args: readonly string[]): void {
  execFileSync(systemTool('openssl'), args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function caConfig(dir: string): string {
  return `[ ca ]
default_ca = test_ca
[ test_ca ]
dir = ${dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
certificate = $dir/ca.pem
private_key = $dir/ca-key.pem
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 30
default_crl_days = 30
policy = policy_any
unique_subject = no
copy_extensions = none
[ policy_any ]
commonName = supplied
`;
}
