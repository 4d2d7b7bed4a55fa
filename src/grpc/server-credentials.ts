import type { SecureContextOptions } from 'node:tls';
import { ServerCredentials } from '@grpc/grpc-js';
import type { CertificateBundle } from '../security/certificate-bundle.js';
import type { WorkloadCertificates } from '../security/workload-certificates.js';
import { GrpcNoCertificateError } from './errors.js';
import type { GrpcCapable } from './mesh-core.js';

function contextOf(bundle: CertificateBundle): SecureContextOptions {
  return { cert: bundle.chainPem, key: bundle.keyPem, ca: bundle.rootsPem };
}

/**
 * Server credentials from the workload's certificates: client certificates required and verified
 * against the mesh's roots (STRICT mTLS), `h2` by ALPN (also to a sidecar's `istio-h2`). A
 * rotation is taken by the listening server for its next handshakes, through grpc-js's own
 * secure-context watch.
 */
class MeshServerCredentials extends ServerCredentials {
  private readonly onRotated = (bundle: CertificateBundle): void => this.updateSecureContextOptions(contextOf(bundle));

  constructor(
    private readonly certificates: WorkloadCertificates,
    bundle: CertificateBundle,
  ) {
    super({ requestCert: true, rejectUnauthorized: true }, contextOf(bundle));
  }

  override _addWatcher(watcher: Parameters<ServerCredentials['_addWatcher']>[0]): void {
    if (this.getWatcherCount() === 0) this.certificates.on('rotated', this.onRotated);
    super._addWatcher(watcher);
  }

  override _removeWatcher(watcher: Parameters<ServerCredentials['_removeWatcher']>[0]): void {
    super._removeWatcher(watcher);
    if (this.getWatcherCount() === 0) this.certificates.off('rotated', this.onRotated);
  }

  _equals(other: ServerCredentials): boolean {
    return other === this;
  }
}

/**
 * `server.bindAsync(address, meshServerCredentials(mesh), ...)`: mutual TLS with the workload's
 * certificates, rotated in place; with `meshServerInterceptor(mesh)` the verified caller's SPIFFE
 * ID is its principal for AuthorizationPolicy. Throws `ERR_MESH_GRPC_NO_CERTIFICATE` when the
 * mesh has no certificates (never a plaintext server instead).
 */
export function meshServerCredentials(mesh: GrpcCapable): ServerCredentials {
  const certificates = mesh.grpcCore().certificates();
  const bundle = certificates?.current;
  if (!certificates || !bundle) {
    const why = !certificates
      ? 'the mesh has none (the certificates option, $OUTPUT_CERTS or a well-known directory)'
      : certificates.lastError
        ? `none passed their checks (${certificates.lastError.message})`
        : 'none have been read yet';
    throw new GrpcNoCertificateError(
      `meshServerCredentials(mesh): a mutual TLS server needs the workload's certificates, and ${why}`,
      certificates?.lastError ? { cause: certificates.lastError } : undefined,
    );
  }
  return new MeshServerCredentials(certificates, bundle);
}
