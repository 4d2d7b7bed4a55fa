// TLS origination to upstream endpoints: DestinationRule `tls` compiled with the snapshot, and
// the connectors that originate it. Mesh mTLS, identities and inbound policies come here later.
export { TlsNotSupportedError, UpstreamTlsError } from './errors.js';
export type { UnsupportedTls } from './errors.js';
export type { TlsDisabled, TlsOrigination, TlsUnsupported, UpstreamTls } from './tls-settings.js';
export { compileClientTls, TLS_DISABLED, URL_TLS } from './tls-settings.js';
export { UpstreamTlsTable } from './destination-rule-tls.js';
export { tlsConnectOptions, tlsConnector } from './tls-connect.js';
export { TlsAgents } from './tls-agents.js';
export type { ConnectBase } from './tls-connect.js';
