import type { CertificateFiles } from '../../src/security/certificate-bundle.js';
import type { CertificateSource } from '../../src/security/certificate-source.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';

/**
 * Workload certificates held in memory (`certificates: { source, debounceMs: 0 }`): `set` swaps
 * the whole set at once and tells the mesh, as a Secret volume swap does, without the file system's
 * timing. Await `mesh.certificates.reload()` (or the `certificateRotated` event) after it.
 */
export class MemoryCertificateSource implements CertificateSource {
  readonly id = 'memory:test';
  private files: CertificateFiles;
  private readonly listeners = new Set<() => void>();

  constructor(issued: IssuedCertificate, roots: string = issued.rootPem) {
    this.files = MemoryCertificateSource.filesOf(issued, roots);
  }

  static filesOf(issued: IssuedCertificate, roots: string = issued.rootPem): CertificateFiles {
    return {
      chain: { path: 'memory:cert-chain.pem', pem: issued.chainPem },
      key: { path: 'memory:key.pem', pem: issued.keyPem },
      roots: { path: 'memory:root-cert.pem', pem: roots },
    };
  }

  set(issued: IssuedCertificate, roots: string = issued.rootPem): void {
    this.files = MemoryCertificateSource.filesOf(issued, roots);
    for (const listener of this.listeners) listener();
  }

  read(): Promise<CertificateFiles> {
    return Promise.resolve(this.files);
  }

  watch(onChange: () => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }
}
