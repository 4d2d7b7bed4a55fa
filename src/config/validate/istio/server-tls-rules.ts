import type { FieldPath } from '../../document.js';
import type { ServerTLSSettings } from '../../schema/index.js';
import type { RuleReport } from './rule-report.js';

/** The TLS cipher suites Envoy takes (security.ValidCipherSuites). */
const CIPHER_SUITES = new Set([
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
  'ECDHE-ECDSA-AES128-SHA',
  'ECDHE-RSA-AES128-SHA',
  'ECDHE-ECDSA-AES256-SHA',
  'ECDHE-RSA-AES256-SHA',
  'AES128-GCM-SHA256',
  'AES256-GCM-SHA384',
  'AES128-SHA',
  'AES256-SHA',
  'DES-CBC3-SHA',
]);

/** validateTLSOptions: server-side TLS of a Sidecar ingress listener. */
export function checkServerTls(tls: ServerTLSSettings, path: FieldPath, report: RuleReport): void {
  if ((tls.minProtocolVersion === 'TLSV1_0' || tls.minProtocolVersion === 'TLSV1_1') && !tls.cipherSuites?.length) {
    report.warn(path, 'TLS version below TLSV1_2 require setting compatible ciphers as by default they no longer include compatible ciphers.');
  }
  const invalid = new Set<string>();
  const valid = new Set<string>();
  const duplicate = new Set<string>();
  for (const suite of tls.cipherSuites ?? []) {
    if (!CIPHER_SUITES.has(suite)) invalid.add(suite);
    else if (valid.has(suite)) duplicate.add(suite);
    else valid.add(suite);
  }
  if (invalid.size > 0) report.warn([...path, 'cipherSuites'], `ignoring invalid cipher suites: [${[...invalid].sort().join(' ')}]`);
  if (duplicate.size > 0) report.warn([...path, 'cipherSuites'], `ignoring duplicate cipher suites: [${[...duplicate].sort().join(' ')}]`);
  const certificates = tls.tlsCertificates ?? [];
  const credentialNames = tls.credentialNames ?? [];
  if (tls.mode === 'ISTIO_MUTUAL') {
    const fields: [keyof ServerTLSSettings, string][] = [
      ['serverCertificate', 'server certificate'],
      ['privateKey', 'private key'],
      ['caCertificates', 'CA bundle'],
      ['tlsCertificates', 'tlsCertificates'],
      ['credentialName', 'credentialName'],
      ['credentialNames', 'credentialNames'],
    ];
    for (const [field, what] of fields) {
      const value = tls[field];
      if (Array.isArray(value) ? value.length > 0 : !!value) report.error([...path, field], `ISTIO_MUTUAL TLS cannot have associated ${what}`);
    }
    return;
  }
  if (
    (tls.mode === 'PASSTHROUGH' || tls.mode === 'AUTO_PASSTHROUGH') &&
    (tls.caCrl || tls.serverCertificate || tls.privateKey || tls.caCertificates || certificates.length > 0 || tls.credentialName || credentialNames.length > 0)
  ) {
    report.warn(path, `${tls.mode} mode does not use certificates, they will be ignored`);
  }
  const sources = [tls.serverCertificate && tls.privateKey, tls.credentialName, credentialNames.length > 0, certificates.length > 0].filter(Boolean).length;
  if (sources > 1) report.error(path, 'only one of credential_name, credential_names, server_certificate/private_key, tls_certificates should be specified');
  const serving = tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL' || tls.mode === 'OPTIONAL_MUTUAL';
  if (serving && (tls.credentialName || credentialNames.length > 0)) return;
  if (serving) {
    const prefix = tls.mode === 'SIMPLE' ? 'SIMPLE TLS' : 'MUTUAL TLS';
    if (tls.mode !== 'SIMPLE' && !tls.caCertificates) report.error(path, `${prefix} requires a client CA bundle`);
    if (certificates.length > 2) report.warn([...path, 'tlsCertificates'], `${prefix} can support up to 2 server certificates`);
    const pairs = certificates.length > 0 ? certificates : [{ serverCertificate: tls.serverCertificate, privateKey: tls.privateKey }];
    for (const pair of pairs) {
      if (!pair.serverCertificate) report.error(path, `${prefix} requires a server certificate`);
      if (!pair.privateKey) report.error(path, `${prefix} requires a private key`);
    }
  }
  if (tls.caCrl) {
    if (tls.credentialName) report.error([...path, 'caCrl'], 'CRL is not supported with credentialName. CRL has to be specified in the credential');
    if (tls.mode === 'SIMPLE') report.error([...path, 'caCrl'], 'CRL is not supported with SIMPLE TLS');
  }
}
