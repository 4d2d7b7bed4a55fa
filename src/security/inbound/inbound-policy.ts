import type { MeshClock } from '../../clock.js';
import type { CertificateBundle } from '../certificate-bundle.js';
import type { PeerRejectedError } from '../errors.js';
import type { MtlsMode } from '../peer-authentication-policy.js';
import type { PeerIdentity } from '../peer-identity.js';
import type { TrustDomains } from '../spiffe-id.js';

/** How one inbound connection ended up. */
export type InboundOutcome =
  | { readonly result: 'mtls'; readonly port: number; readonly mode: MtlsMode; readonly identity: PeerIdentity }
  | { readonly result: 'plaintext'; readonly port: number; readonly mode: MtlsMode }
  | { readonly result: 'rejected'; readonly port: number; readonly mode: MtlsMode; readonly error: PeerRejectedError };

/**
 * What an inbound server asks the mesh, once per connection: the mode of the port (from the
 * PeerAuthentication in the snapshot), the workload's certificates (the bundle in use now), and the
 * trust domains peers may come from. `report` sees how each connection ended (metrics, events).
 */
export interface InboundPolicy {
  mode(port: number): MtlsMode;
  certificates(): CertificateBundle | undefined;
  readonly trustDomains: TrustDomains;
  report?(outcome: InboundOutcome): void;
  /** Calls `listener` with each new bundle (servers that keep a TLS context of their own); returns the unsubscribe. */
  onRotation?(listener: (bundle: CertificateBundle) => void): () => void;
  /** The mesh's clock, for the protocol-detection timeout. Default the system clock. */
  readonly clock?: MeshClock;
}
