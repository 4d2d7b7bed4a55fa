import { MeshError } from '../errors.js';
import type { ResourceRef } from '../config/issue.js';
import { formatResourceRef } from '../config/issue.js';

/** Where a TLS setting the mesh cannot honour was configured, and what it asked for. */
export interface UnsupportedTls {
  readonly resource: ResourceRef;
  /** Field path, e.g. `spec.trafficPolicy.portLevelSettings[0].tls.mode`. */
  readonly path: string;
  /** What is not implemented, e.g. `mode ISTIO_MUTUAL (mesh mTLS)`. */
  readonly what: string;
}

/**
 * The destination's DestinationRule asks for TLS the mesh does not implement yet (`ISTIO_MUTUAL`,
 * `credentialName`). The request fails before anything is sent: it never goes out in plaintext.
 * A configuration problem, not the upstream's: it is never retried and never counted against a pod.
 */
export class TlsNotSupportedError extends MeshError {
  readonly code = 'ERR_MESH_TLS_UNSUPPORTED';
  readonly resource: ResourceRef;
  readonly path: string;
  constructor(readonly unsupported: UnsupportedTls) {
    super(`${formatResourceRef(unsupported.resource)}: ${unsupported.path}: ${unsupported.what} is not implemented yet; the request was not sent (it is never sent without the TLS asked for)`);
    this.resource = unsupported.resource;
    this.path = unsupported.path;
  }
}

/**
 * The TLS handshake with an upstream endpoint failed: unknown CA, a certificate not valid for the
 * name, expired or revoked, a client certificate refused, or a peer that does not speak TLS.
 * Envoy's "upstream connect error ... TLS error" (response flag UF): a connect failure, so it is
 * retried like one (`connect-failure`) and counted by outlier detection as a locally originated
 * failure. `cause` holds Node's error; `reason` its code.
 */
export class UpstreamTlsError extends MeshError {
  readonly code = 'ERR_MESH_UPSTREAM_TLS';
  constructor(
    /** `address:port` of the endpoint. */
    readonly endpoint: string,
    /** The SNI sent; undefined when none was (an IP address). */
    readonly servername: string | undefined,
    /** Node's (OpenSSL's) code for the failure, e.g. `CERT_HAS_EXPIRED`. */
    readonly reason: string,
    cause: Error,
  ) {
    super(
      `upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS error: ${reason}: ${cause.message} (endpoint ${endpoint}${servername ? `, server name ${servername}` : ', no server name'})`,
      { cause },
    );
  }
}
