import type { MeshClock } from '../clock.js';
import type { InboundPolicy, InboundOutcome } from './inbound/inbound-policy.js';
import type { CertificateOptions, SecretAccess } from './certificate-layouts.js';
import { certificateSourceFor, discoverCertificates } from './certificate-layouts.js';
import type { MtlsMode, PeerAuthenticationPolicy } from './peer-authentication-policy.js';
import { TrustDomains } from './spiffe-id.js';
import { WorkloadCertificates } from './workload-certificates.js';

/** The security options of a mesh (see `MeshOptions`). */
export interface MeshSecurityOptions {
  readonly certificates?: CertificateOptions | false;
  readonly trustDomain?: string;
  readonly trustDomainAliases?: readonly string[];
  /** Certificate validity, expiry and the watch timers. Default the system clock. */
  readonly clock?: MeshClock;
}

/** Istio's default trust domain. */
export const DEFAULT_TRUST_DOMAIN = 'cluster.local';

/**
 * The mesh's side of security: the workload certificates (watched and rotated) and the trust
 * domains, and the inbound policy servers ask per connection.
 */
export class MeshSecurity {
  private constructor(
    readonly certificates: WorkloadCertificates | undefined,
    readonly trustDomains: TrustDomains,
    private readonly clock: MeshClock | undefined,
  ) {}

  /** Security without certificates (TLS connections are refused, plaintext follows PeerAuthentication). */
  static withoutCertificates(options: MeshSecurityOptions): MeshSecurity {
    return new MeshSecurity(undefined, new TrustDomains(options.trustDomain ?? DEFAULT_TRUST_DOMAIN, options.trustDomainAliases ?? []), options.clock);
  }

  /**
   * Reads the first certificates. Configured certificates that fail their checks reject with the
   * `CertificateError`; discovered ones (`$OUTPUT_CERTS`, well-known paths) may come later, so
   * their failure is only kept (`certificates.lastError`) and reported.
   */
  static async start(options: MeshSecurityOptions, kube?: SecretAccess, env: NodeJS.ProcessEnv = process.env): Promise<MeshSecurity> {
    const trustDomains = new TrustDomains(options.trustDomain ?? DEFAULT_TRUST_DOMAIN, options.trustDomainAliases ?? []);
    const configured = options.certificates === false ? undefined : options.certificates;
    const chosen = options.certificates === false ? undefined : (configured ?? discoverCertificates(env));
    if (!chosen) return new MeshSecurity(undefined, trustDomains, options.clock);
    const certificates = new WorkloadCertificates(certificateSourceFor(chosen, kube, options.clock), {
      ...(chosen.debounceMs !== undefined ? { debounceMs: chosen.debounceMs } : {}),
      ...(options.clock ? { clock: options.clock } : {}),
    });
    await certificates.start();
    if (configured && certificates.lastError) {
      const error = certificates.lastError;
      certificates.close();
      throw error;
    }
    return new MeshSecurity(certificates, trustDomains, options.clock);
  }

  /**
   * The policy an inbound server applies, reading the snapshot in force at each connection (only
   * its PeerAuthentication, so security needs nothing else of config's snapshot).
   */
  inboundPolicy(
    snapshot: () => { readonly peerAuthentication: PeerAuthenticationPolicy } | undefined,
    report: (outcome: InboundOutcome) => void,
  ): InboundPolicy {
    const certificates = this.certificates;
    return {
      mode: (port: number): MtlsMode => snapshot()?.peerAuthentication.modeFor(port) ?? 'PERMISSIVE',
      certificates: () => certificates?.current,
      trustDomains: this.trustDomains,
      report,
      ...(this.clock ? { clock: this.clock } : {}),
      onRotation: (listener) => {
        certificates?.on('rotated', listener);
        return () => certificates?.off('rotated', listener);
      },
    };
  }

  close(): void {
    this.certificates?.close();
  }
}
