// TLS origination to upstream endpoints: DestinationRule `tls` compiled with the snapshot (by
// config/compile/security/destination-rule-tls.ts), mesh mTLS (ISTIO_MUTUAL, auto mTLS) resolved
// per destination; the connectors that originate them are in src/transport/.
export { TlsCredentialUnavailableError, TlsNotSupportedError, UpstreamTlsError, WorkloadCertificateUnavailableError } from './errors.js';
export type { TlsCredentialFailure, UnsupportedTls } from './errors.js';
export type { TlsCredentialRef, TlsDisabled, TlsIstioMutual, TlsOrigination, TlsUnavailable, TlsUnsupported, UpstreamTls } from './tls-settings.js';
export type { MeshTls, MeshTlsCredentials } from './mesh-tls.js';
export { isMeshEndpoint, istioSni, MESH_ALPN_HTTP1, MESH_ALPN_HTTP2, TLS_MODE_LABEL } from './mesh-tls.js';
export { compileClientTls, TLS_DISABLED, URL_TLS } from './tls-settings.js';
