import { MeshError } from '../errors.js';

/** Why a workload certificate bundle was refused. */
export type CertificateProblem =
  | 'missing'
  | 'unreadable'
  | 'invalid'
  | 'key-mismatch'
  | 'expired'
  | 'not-yet-valid'
  | 'untrusted-chain';

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
