import { MeshError } from '../errors.js';
import type { ResourceRef } from '../issue.js';
import { formatResourceRef } from '../issue.js';

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
    super(
      `${formatResourceRef(unsupported.resource)}: ${unsupported.path}: ${unsupported.what} is not implemented yet; the request was not sent (it is never sent without the TLS asked for)`,
    );
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

/** Why a workload certificate bundle was refused. */
export type CertificateProblem = 'missing' | 'unreadable' | 'invalid' | 'key-mismatch' | 'expired' | 'not-yet-valid' | 'untrusted-chain';

/**
 * Workload certificates (a mounted secret, a file) cannot be used: a file is missing or unreadable,
 * holds no valid PEM, the key does not match the certificate, the certificate is expired or not yet
 * valid, or its chain does not lead to the trust roots. `file` names the file at fault and
 * `problem` says what is wrong; the last good certificates, if any, keep serving.
 */
export class CertificateError extends MeshError {
  readonly code = 'ERR_MESH_CERTIFICATE';
  /** For `not-yet-valid`: when the certificate becomes valid (the set is read again then). */
  readonly validFrom: Date | undefined;
  constructor(
    readonly problem: CertificateProblem,
    readonly file: string,
    message: string,
    options?: { cause?: unknown; validFrom?: Date },
  ) {
    super(`${file}: ${message}`, options);
    this.validFrom = options?.validFrom;
  }
}

/** A string that should be a SPIFFE ID (`spiffe://<trust-domain>/<path>`) is not one. */
export class InvalidSpiffeIdError extends MeshError {
  readonly code = 'ERR_MESH_SPIFFE_ID';
  constructor(
    readonly value: string,
    reason: string,
  ) {
    super(`not a SPIFFE ID: ${JSON.stringify(value)}: ${reason}`);
  }
}

/** Why an inbound connection was refused. */
export type PeerRejection =
  /** Plaintext to a port whose PeerAuthentication mode is STRICT. */
  | 'plaintext'
  /** A TLS client that presented no certificate. */
  | 'no-certificate'
  /** The client certificate does not chain to the mesh's roots. */
  | 'untrusted'
  | 'expired'
  | 'not-yet-valid'
  /** The client certificate carries no SPIFFE ID, or one of a trust domain this mesh does not accept. */
  | 'identity'
  /** The TLS handshake failed (protocol, cipher, ALPN; the cause says which). */
  | 'handshake'
  /** TLS was asked for but the workload has no usable certificates to serve it with. */
  | 'no-workload-certificate'
  /** Neither data nor a handshake within the detection timeout. */
  | 'timeout';

/**
 * An inbound connection was refused by the PeerAuthentication in force: it is closed without being
 * served. `reason` says why, `mode` is the mode of the port it arrived on.
 */
export class PeerRejectedError extends MeshError {
  readonly code = 'ERR_MESH_PEER_REJECTED';
  constructor(
    readonly reason: PeerRejection,
    readonly mode: string,
    readonly port: number,
    readonly remoteAddress: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`inbound connection from ${remoteAddress ?? 'unknown'} to port ${port} refused (${mode}): ${message}`, options);
  }
}

/** The certificate or inbound-server options are inconsistent (names the option and what was expected). */
export class SecurityOptionError extends MeshError {
  readonly code = 'ERR_MESH_SECURITY_OPTION';
}

/**
 * Mutual TLS with the workload's certificates was asked for (DestinationRule `ISTIO_MUTUAL`, or
 * auto mTLS to a workload of the mesh) but the workload has none: none configured or
 * discovered, or none passed their checks yet (`cause` says why). The request fails before
 * anything is sent, never in plaintext; a problem of this workload, not of the upstream: it is
 * never retried and never counted against a pod.
 */
export class WorkloadCertificateUnavailableError extends MeshError {
  readonly code = 'ERR_MESH_NO_WORKLOAD_CERTIFICATE';
  constructor(
    /** The destination: `host:port`, with ` (subset v1)` for a subset's. */
    readonly destination: string,
    /** What asked for mTLS: `DestinationRule shop/api spec.trafficPolicy.tls` or `auto mTLS`. */
    readonly source: string,
    /** False: the mesh has no certificate source at all; true: it has one, without a valid set (yet). */
    readonly configured: boolean,
    cause?: CertificateError,
  ) {
    const why = !configured
      ? 'none are configured (the certificates option, $OUTPUT_CERTS or a well-known directory)'
      : cause
        ? `none passed their checks (${cause.message})`
        : 'none have been read yet';
    super(`mutual TLS to ${destination} (${source}) needs the workload's certificates, and ${why}; the request was not sent`, cause ? { cause } : undefined);
  }
}

/**
 * Where a DestinationRule's client credentials were configured (`credentialName`, or the files of
 * its `tls` block), what they are, and why they cannot be used.
 */
export interface TlsCredentialFailure {
  readonly resource: ResourceRef;
  /** Field path, e.g. `spec.trafficPolicy.tls.credentialName` or `spec.trafficPolicy.tls.clientCertificate`. */
  readonly path: string;
  /** `namespace/name` of the Secret; undefined when the credentials are files. */
  readonly secret: string | undefined;
  /** The files the `tls` block names; undefined for a Secret. */
  readonly files?: readonly string[] | undefined;
  /** What is wrong: no Kubernetes API, no such Secret, a key missing or malformed, the API refused (403), an expired certificate. */
  readonly reason: string;
  readonly cause?: Error | undefined;
}

/**
 * A DestinationRule's client credentials cannot be used: its `credentialName` Secret (no
 * Kubernetes API configured, the Secret missing, malformed or unreadable) or the files its `tls`
 * block names (the certificate expired or not valid yet, the key not matching it), and no good
 * set was read before. The request fails before anything is sent: never in plaintext, never
 * without the client certificate. A configuration problem, not the upstream's: never retried,
 * never counted against a pod.
 */
export class TlsCredentialUnavailableError extends MeshError {
  readonly code = 'ERR_MESH_TLS_CREDENTIAL';
  readonly resource: ResourceRef;
  readonly path: string;
  /** `namespace/name` of the Secret; undefined when the credentials are files. */
  readonly secret: string | undefined;
  /** The files the `tls` block names; undefined for a Secret. */
  readonly files: readonly string[] | undefined;
  readonly reason: string;
  constructor(failure: TlsCredentialFailure) {
    const what = failure.secret !== undefined ? `in Secret ${failure.secret}` : `in the files ${(failure.files ?? []).join(', ')}`;
    super(
      `${formatResourceRef(failure.resource)}: ${failure.path}: the client credentials ${what} cannot be used: ${failure.reason}; the request was not sent (it is never sent without the TLS asked for)`,
      failure.cause ? { cause: failure.cause } : undefined,
    );
    this.resource = failure.resource;
    this.path = failure.path;
    this.secret = failure.secret;
    this.files = failure.files;
    this.reason = failure.reason;
  }
}

/**
 * A DestinationRule's client credentials (its `credentialName` Secret or the files its `tls`
 * block names) were read and refused: the `credentialRejected` mesh event.
 */
export interface ClientCredentialRejection {
  /** What was read: `Secret shop/api-client`, or `DestinationRule shop/api spec.trafficPolicy.tls` for its files. */
  readonly source: string;
  /** `problem` says what is wrong (`key-mismatch`, `expired`, `missing`...), `file` names the file or Secret key at fault. */
  readonly error: CertificateError;
  /** True: the last good credentials keep serving; false: there are none, requests fail closed. */
  readonly kept: boolean;
}
