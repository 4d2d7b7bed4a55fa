import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { createMesh } from '../../src/index.js';
import { CertificateError } from '../../src/security/errors.js';
import { certificateSourceFor } from '../../src/security/certificate-layouts.js';
import { WorkloadCertificates } from '../../src/security/workload-certificates.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('sidecarless certs', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await removeTempDir(dir);
  });

  it('creates a CA and a workload certificate in the Istio layout that the mesh loads and openssl verifies', async () => {
    const ca = await run('certs', 'ca', '--out', join(dir, 'ca'), '--trust-domain', 'dev.local');
    expect(ca.code).toBe(0);
    expect(ca.stderr).toContain('NOT for production');
    expect(statSync(join(dir, 'ca', 'ca-key.pem')).mode & 0o777).toBe(0o600);

    const workload = await run(
      'certs',
      'workload',
      '--ca',
      join(dir, 'ca'),
      '--out',
      join(dir, 'reviews'),
      '--namespace',
      'shop',
      '--service-account',
      'reviews',
      '--dns',
      'reviews.shop.svc',
      '--ip',
      '127.0.0.1',
      '--hours',
      '2',
    );
    expect(workload.code).toBe(0);
    expect(workload.stderr).toContain('NOT for production');
    expect(workload.stdout).toContain(`wrote istio layout to ${join(dir, 'reviews')}: spiffe://dev.local/ns/shop/sa/reviews`);
    const leaf = new X509Certificate(readFileSync(join(dir, 'reviews', 'cert-chain.pem')));
    expect(leaf.subjectAltName).toBe('DNS:reviews.shop.svc, URI:spiffe://dev.local/ns/shop/sa/reviews, IP Address:127.0.0.1');
    expect(leaf.validToDate.getTime() - leaf.validFromDate.getTime()).toBe(2 * 3_600_000);
    const verify = spawnSync('openssl', ['verify', '-x509_strict', '-CAfile', join(dir, 'reviews', 'root-cert.pem'), join(dir, 'reviews', 'cert-chain.pem')], {
      encoding: 'utf8',
    });
    expect(verify.stdout).toContain(': OK');

    const certificates = new WorkloadCertificates(certificateSourceFor({ directory: join(dir, 'reviews') }), { watch: false });
    await certificates.start();
    expect(certificates.lastError).toBeUndefined();
    expect(certificates.current?.identity?.uri).toBe('spiffe://dev.local/ns/shop/sa/reviews');
  });

  it('writes the Kubernetes TLS Secret layout and creates the CA on first use', async () => {
    const r = await run('certs', 'workload', '--ca', join(dir, 'ca'), '--out', join(dir, 'tls'), '--layout', 'kubernetes-tls');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`created a development CA in ${join(dir, 'ca')}`);
    for (const name of ['tls.crt', 'tls.key', 'ca.crt']) expect(statSync(join(dir, 'tls', name)).isFile()).toBe(true);
    // A second workload from the same CA is trusted by the first one's roots.
    const second = await run('certs', 'workload', '--ca', join(dir, 'ca'), '--out', join(dir, 'other'));
    expect(second.stdout).not.toContain('created a development CA');
    const verify = spawnSync('openssl', ['verify', '-CAfile', join(dir, 'tls', 'ca.crt'), join(dir, 'other', 'cert-chain.pem')], { encoding: 'utf8' });
    expect(verify.stdout).toContain(': OK');
  });

  it('exits 2 on usage errors', async () => {
    expect((await run('certs', 'workload', '--out', dir)).code).toBe(2);
    expect((await run('certs', 'workload', '--ca', dir, '--out', dir, '--layout', 'pkcs12')).stderr).toContain('--layout must be one of istio, kubernetes-tls');
    expect(() => statSync(join(dir, 'ca-cert.pem'))).toThrow();
    expect((await run('certs', 'mint', '--out', dir)).code).toBe(2);
    expect((await run('certs', 'ca', '--out', dir, '--days', 'zero')).stderr).toContain('--days must be a positive number');
  });

  it('createMesh rejects configured certificates that fail their checks, naming the file', async () => {
    await run('certs', 'workload', '--ca', join(dir, 'ca'), '--out', join(dir, 'w'));
    writeFileSync(join(dir, 'w', 'key.pem'), readFileSync(join(dir, 'ca', 'ca-key.pem')));
    const failure = await createMesh({ certificates: { directory: join(dir, 'w') }, dns: false, watch: false }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CertificateError);
    expect((failure as CertificateError).problem).toBe('key-mismatch');
    expect((failure as CertificateError).file).toBe(join(dir, 'w', 'key.pem'));
  });
});
