import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CertificatePaths } from '../certificate-source.js';
import type { CertificateLayout } from '../certificate-layouts.js';
import { LAYOUT_FILES } from '../certificate-layouts.js';
import type { IssuedCertificate } from './dev-ca.js';

/**
 * Writes a minted certificate as a certificate directory of `layout` (Istio's `cert-chain.pem`,
 * `key.pem`, `root-cert.pem`, or a Kubernetes TLS Secret's `tls.crt`, `tls.key`, `ca.crt`...). The
 * key file is readable by its owner only. `rootsPem` replaces the issued root (a bundle of several).
 */
export async function writeCertificateDirectory(
  directory: string,
  layout: CertificateLayout,
  issued: IssuedCertificate,
  rootsPem: string = issued.rootPem,
): Promise<CertificatePaths> {
  await mkdir(directory, { recursive: true });
  const names = LAYOUT_FILES[layout];
  const paths = { chain: join(directory, names.chain), key: join(directory, names.key), roots: join(directory, names.roots) };
  await writeFile(paths.chain, issued.chainPem);
  await writeFile(paths.key, issued.keyPem, { mode: 0o600 });
  await chmod(paths.key, 0o600);
  await writeFile(paths.roots, rootsPem);
  return paths;
}
