import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CertificateBundle } from '../../src/security/certificate-bundle.js';
import type { CertificateOptions } from '../../src/security/certificate-layouts.js';
import { certificateSourceFor, discoverCertificates } from '../../src/security/certificate-layouts.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { writeCertificateDirectory } from '../../src/security/dev-ca/write-layout.js';
import { CertificateError } from '../../src/security/errors.js';
import { WorkloadCertificates } from '../../src/security/workload-certificates.js';
import { SecretVolume } from '../helpers/secret-volume.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { TestClock } from '../helpers/test-clock.js';

const DAY = 86_400_000;

describe('workload certificates from mounted secrets', () => {
  let dir: string;
  let opened: WorkloadCertificates[];
  const ca = DevCa.create();

  beforeEach(async () => {
    dir = await makeTempDir();
    opened = [];
  });
  afterEach(async () => {
    for (const c of opened) c.close();
    await removeTempDir(dir);
  });

  async function open(options: CertificateOptions): Promise<WorkloadCertificates> {
    const certificates = new WorkloadCertificates(certificateSourceFor({ pollIntervalMs: 200, ...options }), { debounceMs: 20 });
    opened.push(certificates);
    await certificates.start();
    return certificates;
  }

  it.each([
    ['istio', 'cert-chain.pem'],
    ['kubernetes-tls', 'tls.crt'],
    ['spiffe-helper', 'svid.pem'],
    ['gke-workload', 'certificates.pem'],
  ] as const)('reads the %s layout (found by its file names) with its SPIFFE identity', async (layout, chainFile) => {
    const issued = ca.issue({ namespace: 'shop', serviceAccount: 'reviews' });
    await writeCertificateDirectory(dir, layout, issued);
    const certificates = await open({ directory: dir });
    expect(certificates.lastError).toBeUndefined();
    const bundle = certificates.current as CertificateBundle;
    expect(bundle.source).toBe(`${layout}:${dir}`);
    expect(bundle.files.chain).toBe(join(dir, chainFile));
    expect(bundle.identity?.uri).toBe('spiffe://cluster.local/ns/shop/sa/reviews');
    expect(bundle.identity?.namespace).toBe('shop');
    expect(bundle.fingerprint).toBe(issued.certificate.fingerprint256);
  });

  it('reads cert-manager csi-driver volumes with renamed files (csi.cert-manager.io/*-file)', async () => {
    const issued = ca.issue({ serviceAccount: 'csi' });
    writeFileSync(join(dir, 'crt.pem'), issued.chainPem);
    writeFileSync(join(dir, 'key.pem'), issued.keyPem);
    writeFileSync(join(dir, 'ca.pem'), issued.rootPem);
    const certificates = await open({ directory: dir, layout: 'cert-manager-csi', files: { chain: 'crt.pem', key: 'key.pem', roots: 'ca.pem' } });
    expect(certificates.current?.identity?.serviceAccount).toBe('csi');
  });

  it('accepts SPIFFE-style bundles: several roots, intermediates in the chain, the root at its end', async () => {
    const otherRoot = DevCa.create({ commonName: 'federated root' });
    const intermediate = ca.intermediate();
    const issued = intermediate.issue({ serviceAccount: 'spiffe' });
    await writeCertificateDirectory(dir, 'spiffe-helper', issued, otherRoot.certificatePem + ca.certificatePem);
    const certificates = await open({ directory: dir });
    expect(certificates.lastError).toBeUndefined();
    expect(certificates.current?.roots).toHaveLength(2);
    expect(certificates.current?.chain).toHaveLength(2);

    // Istio's cert-chain.pem with a plugged-in CA carries the root too.
    const withRoot = join(dir, 'with-root');
    await writeCertificateDirectory(withRoot, 'istio', { ...issued, chainPem: issued.chainPem + ca.certificatePem });
    const second = await open({ directory: withRoot });
    expect(second.lastError).toBeUndefined();
    expect(second.current?.chain).toHaveLength(2);
  });

  it('explicit file paths work without a directory', async () => {
    const issued = ca.issue({ serviceAccount: 'files' });
    const paths = await writeCertificateDirectory(dir, 'istio', issued);
    const certificates = await open({ files: paths });
    expect(certificates.current?.identity?.serviceAccount).toBe('files');
    expect(certificates.current?.source).toBe(`files:${paths.chain}`);
  });

  describe('bad input: a clear error naming the file, never a crash', () => {
    async function refusal(write: () => Promise<unknown> | void, options: CertificateOptions = { directory: dir, layout: 'istio' }): Promise<CertificateError> {
      await write();
      const certificates = await open(options);
      expect(certificates.current).toBeUndefined();
      expect(certificates.lastError).toBeInstanceOf(CertificateError);
      expect(certificates.lastError?.code).toBe('ERR_MESH_CERTIFICATE');
      return certificates.lastError as CertificateError;
    }

    it('a missing file', async () => {
      const error = await refusal(() => {
        const issued = ca.issue();
        writeFileSync(join(dir, 'cert-chain.pem'), issued.chainPem);
        writeFileSync(join(dir, 'root-cert.pem'), issued.rootPem);
      });
      expect(error.problem).toBe('missing');
      expect(error.file).toBe(join(dir, 'key.pem'));
      expect(error.message).toBe(`${join(dir, 'key.pem')}: no such file`);
    });

    it('a file that holds no certificate', async () => {
      const error = await refusal(async () => {
        await writeCertificateDirectory(dir, 'istio', ca.issue());
        writeFileSync(join(dir, 'root-cert.pem'), 'not a certificate\n');
      });
      expect(error.problem).toBe('invalid');
      expect(error.message).toContain(`${join(dir, 'root-cert.pem')}: no PEM certificate (-----BEGIN CERTIFICATE-----) found`);
    });

    it('a corrupt certificate and a garbage key', async () => {
      const issued = ca.issue();
      const corrupt = issued.chainPem.replace(/\n[A-Za-z0-9+/]{20}/, '\nAAAAAAAAAAAAAAAAAAAA');
      const error = await refusal(() => writeCertificateDirectory(dir, 'istio', { ...issued, chainPem: corrupt }));
      expect(error.problem).toBe('invalid');
      expect(error.message).toMatch(/cert-chain\.pem: certificate #1 is not a valid X\.509 certificate/);

      const other = join(dir, 'key');
      const keyError = await refusal(
        () => writeCertificateDirectory(other, 'istio', { ...issued, keyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }),
        { directory: other },
      );
      expect(keyError.problem).toBe('invalid');
      expect(keyError.file).toBe(join(other, 'key.pem'));
      expect(keyError.message).toContain('not a PEM private key');
    });

    it('a key that does not match the certificate', async () => {
      const error = await refusal(() => writeCertificateDirectory(dir, 'istio', { ...ca.issue(), keyPem: ca.issue().keyPem }));
      expect(error.problem).toBe('key-mismatch');
      expect(error.file).toBe(join(dir, 'key.pem'));
      expect(error.message).toContain(`the private key does not belong to the certificate in ${join(dir, 'cert-chain.pem')}`);
    });

    it('an expired and a not-yet-valid certificate', async () => {
      const expired = await refusal(() =>
        writeCertificateDirectory(dir, 'istio', ca.issue({ notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) })),
      );
      expect(expired.problem).toBe('expired');
      expect(expired.message).toMatch(/cert-chain\.pem: the certificate .* expired at /);
      const later = join(dir, 'later');
      const future = await refusal(() => writeCertificateDirectory(later, 'istio', ca.issue({ notBefore: new Date(Date.now() + DAY) })), { directory: later });
      expect(future.problem).toBe('not-yet-valid');
      expect(future.message).toMatch(/is not valid before /);
    });

    it('a chain that does not reach the roots', async () => {
      const error = await refusal(() => writeCertificateDirectory(dir, 'istio', ca.issue(), DevCa.create({ commonName: 'someone else' }).certificatePem));
      expect(error.problem).toBe('untrusted-chain');
      expect(error.file).toBe(join(dir, 'cert-chain.pem'));
      expect(error.message).toContain(`the chain does not lead to any root in ${join(dir, 'root-cert.pem')}`);
      // A leaf from an intermediate without the intermediate in the chain cannot reach the root either.
      const lone = join(dir, 'lone');
      const issued = ca.intermediate().issue();
      const leafOnly = await refusal(() => writeCertificateDirectory(lone, 'istio', { ...issued, chainPem: issued.certificatePem }), { directory: lone });
      expect(leafOnly.problem).toBe('untrusted-chain');
    });
  });

  describe('hot rotation through the ..data swap', () => {
    it('picks up a new pair without a restart and reports it', async () => {
      const volume = new SecretVolume(dir);
      const first = ca.issue({ serviceAccount: 'v1' });
      volume.writeCertificate('kubernetes-tls', first);
      const certificates = await open({ directory: dir });
      expect(certificates.current?.fingerprint).toBe(first.certificate.fingerprint256);

      const second = ca.issue({ serviceAccount: 'v2' });
      const rotated = once(certificates, 'rotated');
      volume.writeCertificate('kubernetes-tls', second);
      const [bundle, previous] = (await rotated) as [CertificateBundle, CertificateBundle];
      expect(bundle.fingerprint).toBe(second.certificate.fingerprint256);
      expect(previous.fingerprint).toBe(first.certificate.fingerprint256);
      expect(certificates.current?.identity?.serviceAccount).toBe('v2');
    });

    it('refuses a new certificate with the old key and keeps the pair in use', async () => {
      const volume = new SecretVolume(dir);
      const first = ca.issue({ serviceAccount: 'v1' });
      volume.writeCertificate('istio', first);
      const certificates = await open({ directory: dir });
      const rejected = once(certificates, 'rejected');
      volume.writeCertificate('istio', ca.issue({ serviceAccount: 'v2' }), { key: first.keyPem });
      const [error] = (await rejected) as [CertificateError];
      expect(error.problem).toBe('key-mismatch');
      expect(error.file).toBe(join(dir, 'key.pem'));
      expect(certificates.current?.fingerprint).toBe(first.certificate.fingerprint256);

      // The operator fixes it: the next consistent pair is taken.
      const fixed = ca.issue({ serviceAccount: 'v3' });
      const rotated = once(certificates, 'rotated');
      volume.writeCertificate('istio', fixed);
      await rotated;
      expect(certificates.current?.identity?.serviceAccount).toBe('v3');
      expect(certificates.lastError).toBeUndefined();
    });

    it('takes a certificate issued ahead of the clock once it becomes valid, without a file change', async () => {
      // The mesh clock's wall time, on a whole second as X.509 times are.
      const clock = new TestClock({ wallNow: Math.floor(Date.now() / 1000) * 1000 });
      const ahead = ca.issue({ serviceAccount: 'ahead', notBefore: new Date(clock.wallNow() + 60_000) });
      await writeCertificateDirectory(dir, 'istio', ahead);
      const certificates = new WorkloadCertificates(certificateSourceFor({ directory: dir }), { watch: false, clock });
      opened.push(certificates);
      await certificates.start();
      expect(certificates.lastError?.problem).toBe('not-yet-valid');
      const rotated = once(certificates, 'rotated');
      // Read again a second after it becomes valid.
      clock.advance(60_999);
      expect(certificates.current).toBeUndefined();
      clock.advance(1);
      await rotated;
      expect(certificates.current?.identity?.serviceAccount).toBe('ahead');
    });

    it('reports the certificate in use when a fifth of its lifetime is left, and again once it has expired', async () => {
      const clock = new TestClock({ wallNow: Math.floor(Date.now() / 1000) * 1000 });
      const start = clock.wallNow();
      // 100 s lifetime, 90 s left: `expiring` is due 70 s from now, expiry 90 s from now.
      await writeCertificateDirectory(dir, 'istio', ca.issue({ notBefore: new Date(start - 10_000), notAfter: new Date(start + 90_000) }));
      const certificates = new WorkloadCertificates(certificateSourceFor({ directory: dir }), { watch: false, clock });
      opened.push(certificates);
      const reports: number[] = [];
      certificates.on('expiring', (_bundle, secondsLeft) => reports.push(secondsLeft));
      await certificates.start();
      clock.advance(69_999);
      expect(reports).toEqual([]);
      clock.advance(2);
      expect(reports).toHaveLength(1);
      expect(reports[0]).toBeCloseTo(20, 1);
      expect(certificates.secondsToExpiry()).toBeCloseTo(20, 1);
      clock.advance(20_000);
      expect(reports).toHaveLength(2);
      expect(reports[1]).toBeLessThanOrEqual(0);
    });
  });

  it('discovers certificates from $OUTPUT_CERTS, even before pilot-agent wrote them', () => {
    expect(discoverCertificates({ OUTPUT_CERTS: join(dir, 'later') })).toEqual({ directory: join(dir, 'later'), layout: 'istio' });
    mkdirSync(join(dir, 'later'));
    expect(discoverCertificates({})).toBeUndefined();
  });
});
