import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { requireSystemTools, systemTool } from '../helpers/system-tools.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

// What the development CA mints is checked with another implementation of X.509.
requireSystemTools('openssl');

const DAY = 86_400_000;

function openssl(args: string[]): { code: number | null; out: string } {
  const r = spawnSync(systemTool('openssl'), args, { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('development CA: real X.509 that OpenSSL and node:crypto accept', () => {
  let dir: string;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('mints a workload certificate with the SPIFFE ID, DNS and IP SANs that openssl verify accepts', () => {
    const ca = DevCa.create({ trustDomain: 'example.org' });
    const issued = ca.issue({ namespace: 'shop', serviceAccount: 'reviews', dnsNames: ['reviews.shop.svc'], ips: ['127.0.0.2', '::1'] });
    expect(issued.spiffeId).toBe('spiffe://example.org/ns/shop/sa/reviews');
    const cert = new X509Certificate(issued.certificatePem);
    expect(cert.subjectAltName).toBe('DNS:reviews.shop.svc, URI:spiffe://example.org/ns/shop/sa/reviews, IP Address:127.0.0.2, IP Address:0:0:0:0:0:0:0:1');
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(ca.certificate)).toBe(true);
    expect(cert.verify(ca.certificate.publicKey)).toBe(true);
    expect(cert.checkIP('127.0.0.2')).toBe('127.0.0.2');
    expect(ca.certificate.ca).toBe(true);
    expect(ca.certificate.subject).toBe('O=example.org\nCN=sidecarless development CA');

    const verify = openssl([
      'verify',
      '-x509_strict',
      '-purpose',
      'sslclient',
      '-CAfile',
      file('root.pem', ca.certificatePem),
      file('leaf.pem', issued.certificatePem),
    ]);
    expect(verify.out).toContain('leaf.pem: OK');
    const text = openssl(['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text']).out;
    expect(text).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(text).toMatch(/Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
    expect(text).toMatch(/Subject Alternative Name: critical/);
    expect(text).toContain('X509v3 Subject Key Identifier');
    expect(text).toContain('X509v3 Authority Key Identifier');
  });

  it('mints the plain TLS certificates the TLS origination tests use (test/helpers/certs.ts) for the purpose asked', () => {
    const ca = DevCa.create({ commonName: 'sidecarless test CA' });
    const server = ca.issue({ spiffeId: null, commonName: 'api.example.com', dnsNames: ['api.example.com'], extendedKeyUsage: ['serverAuth'] });
    const client = ca.issue({ spiffeId: null, commonName: 'orders-client', extendedKeyUsage: ['clientAuth'] });
    const root = file('root.pem', ca.certificatePem);
    expect(
      openssl([
        'verify',
        '-x509_strict',
        '-purpose',
        'sslserver',
        '-verify_hostname',
        'api.example.com',
        '-CAfile',
        root,
        file('server.pem', server.certificatePem),
      ]).out,
    ).toContain('server.pem: OK');
    expect(openssl(['verify', '-x509_strict', '-purpose', 'sslclient', '-CAfile', root, file('client.pem', client.certificatePem)]).out).toContain(
      'client.pem: OK',
    );
    // One usage each: a client certificate is no server certificate.
    expect(openssl(['verify', '-purpose', 'sslserver', '-CAfile', root, join(dir, 'client.pem')]).code).not.toBe(0);
    const text = openssl(['x509', '-in', join(dir, 'client.pem'), '-noout', '-subject', '-ext', 'subjectAltName']).out;
    expect(text).toContain('CN = orders-client');
    expect(text).not.toContain('Subject Alternative Name');
  });

  it('builds chains through intermediates that verify to the root only with the intermediate', () => {
    const root = DevCa.create();
    const intermediate = root.intermediate().intermediate({ commonName: 'second level' });
    const issued = intermediate.issue({ serviceAccount: 'deep' });
    expect(issued.rootPem).toBe(root.certificatePem);
    const chain = issued.chainPem.match(/-----BEGIN CERTIFICATE-----/g);
    expect(chain).toHaveLength(3);
    file('root.pem', root.certificatePem);
    file('chain.pem', issued.chainPem);
    file('leaf.pem', issued.certificatePem);
    expect(openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'chain.pem'), join(dir, 'leaf.pem')]).out).toContain(
      'leaf.pem: OK',
    );
    const alone = openssl(['verify', '-CAfile', join(dir, 'root.pem'), join(dir, 'leaf.pem')]);
    expect(alone.code).not.toBe(0);
    expect(alone.out).toContain('unable to get local issuer certificate');
  });

  it('mints expired and not-yet-valid certificates that openssl refuses for that reason', () => {
    const ca = DevCa.create();
    const expired = ca.issue({ notBefore: new Date(Date.now() - 3 * DAY), notAfter: new Date(Date.now() - DAY) });
    const future = ca.issue({ notBefore: new Date(Date.now() + DAY) });
    file('root.pem', ca.certificatePem);
    expect(openssl(['verify', '-CAfile', join(dir, 'root.pem'), file('expired.pem', expired.certificatePem)]).out).toContain('certificate has expired');
    expect(openssl(['verify', '-CAfile', join(dir, 'root.pem'), file('future.pem', future.certificatePem)]).out).toContain('certificate is not yet valid');
    expect(expired.certificate.validToDate.getTime()).toBeLessThan(Date.now());
    expect(future.certificate.validFromDate.getTime()).toBeGreaterThan(Date.now());
  });

  it('signs CRLs that revoke a certificate for openssl', () => {
    const ca = DevCa.create();
    const revoked = ca.issue({ serviceAccount: 'revoked' });
    const kept = ca.issue({ serviceAccount: 'kept' });
    file('root.pem', ca.certificatePem);
    file('crl.pem', ca.crl([revoked.serial]));
    const args = ['verify', '-crl_check', '-CAfile', join(dir, 'root.pem'), '-CRLfile', join(dir, 'crl.pem')];
    expect(openssl([...args, file('revoked.pem', revoked.certificatePem)]).out).toContain('certificate revoked');
    expect(openssl([...args, file('kept.pem', kept.certificatePem)]).out).toContain('kept.pem: OK');
    expect(openssl(['crl', '-in', join(dir, 'crl.pem'), '-noout', '-text']).out).toContain(`Serial Number: ${revoked.serial.toString('hex').toUpperCase()}`);
  });

  it('loads a CA from its PEM files and keeps issuing under the same name and key', () => {
    const original = DevCa.create({ trustDomain: 'td.test' });
    const loaded = DevCa.load(original.certificatePem, original.keyPem);
    expect(loaded.trustDomain).toBe('td.test');
    const issued = loaded.issue();
    expect(issued.spiffeId).toBe('spiffe://td.test/ns/default/sa/default');
    file('root.pem', original.certificatePem);
    expect(openssl(['verify', '-x509_strict', '-CAfile', join(dir, 'root.pem'), file('leaf.pem', issued.certificatePem)]).out).toContain('leaf.pem: OK');
    expect(() => DevCa.load(issued.certificatePem, issued.keyPem)).toThrow(/not a CA certificate/);
    expect(() => DevCa.load(original.certificatePem, issued.keyPem)).toThrow(/does not belong/);
  });
});
