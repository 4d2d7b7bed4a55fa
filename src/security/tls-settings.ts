import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ResourceRef } from '../issue.js';
import type { CertificateProblem, TlsCredentialFailure, UnsupportedTls } from './errors.js';

/**
 * TLS the mesh originates to an endpoint: from a DestinationRule (`SIMPLE`, `MUTUAL`), or for an
 * `https://` URL whose destination has no DestinationRule TLS (`URL`: Node's trust store, the
 * URL's host name as SNI and as the name the certificate must carry).
 */
export interface TlsOrigination {
  readonly kind: 'originate';
  readonly mode: 'SIMPLE' | 'MUTUAL' | 'URL';
  /** Equal ids, equal settings (file contents included): a connection made under one serves the other. */
  readonly id: string;
  /** Where the settings come from, for messages: `DestinationRule shop/api spec.trafficPolicy.tls`. */
  readonly source: string;
  /** PEM CA certificates replacing Node's trust store; undefined: the trust store. */
  readonly ca: string | undefined;
  /** PEM CRL checked for the server certificate. */
  readonly crl: string | undefined;
  /** PEM client certificate (chain) and key, `MUTUAL` only. */
  readonly cert: string | undefined;
  readonly key: string | undefined;
  /** The SNI sent instead of the request's host name. */
  readonly sni: string | undefined;
  /** The server certificate must carry one of these (instead of the host name check). */
  readonly subjectAltNames: readonly string[] | undefined;
  /** No check of the server certificate at all (only when the rule says `true`). */
  readonly insecureSkipVerify: boolean;
  /**
   * Credentials kept current at run time (`src/security/client-credentials.ts`): a Secret named
   * by `credentialName` (then `ca`, `cert` and `key` are unset until resolved: such settings are
   * never connected with as compiled), or the files the block names (then the compiled contents
   * serve until a change of the files passes its checks). Undefined once resolved.
   */
  readonly credential?: TlsCredentialRef | undefined;
}

/** Where a `tls` block's credentials come from at run time. */
export type TlsCredentialRef = TlsSecretCredential | TlsFileCredential;

/** `credentialName`: a Secret in the DestinationRule's namespace (the workload's, as Istio applies it). */
export interface TlsSecretCredential {
  readonly kind: 'secret';
  readonly namespace: string;
  readonly name: string;
  readonly resource: ResourceRef;
  /** `spec.trafficPolicy.tls.credentialName`. */
  readonly path: string;
}

/** `caCertificates`, `caCrl`, `clientCertificate`, `privateKey`: files read again when they change. */
export interface TlsFileCredential {
  readonly kind: 'files';
  /** Equal keys, equal files and mode. */
  readonly key: string;
  readonly files: readonly string[];
  /** The block as written, compiled again on a change. */
  readonly spec: Readonly<Record<string, unknown>>;
  readonly resource: ResourceRef;
  readonly path: string;
  /**
   * Why the files as compiled cannot be used (a key that does not match the certificate): then
   * `cert` and `key` are unset and requests fail closed until a change of the files passes.
   */
  readonly refused?: TlsFileRefusal;
}

/** Files a `tls` block names that were read and refused: no connection may use them. */
export interface TlsFileRefusal {
  /** The block's field naming the file at fault, e.g. `privateKey`. */
  readonly field: string;
  readonly problem: CertificateProblem;
  /** The file at fault, as the rule names it. */
  readonly file: string;
  readonly message: string;
}

/** TLS whose credentials cannot be had now: every request fails closed (`pending`: wait, then look again). */
export interface TlsUnavailable {
  readonly kind: 'unavailable';
  readonly failure: TlsCredentialFailure;
  /** Set while the credentials are being read for the first time. */
  readonly pending: Promise<void> | undefined;
}

/** A DestinationRule's `tls` with `mode: DISABLE` (plaintext, unless the URL asks for https). */
export interface TlsDisabled {
  readonly kind: 'disable';
}

/** TLS the mesh does not implement: every request to the destination fails closed. */
export interface TlsUnsupported extends UnsupportedTls {
  readonly kind: 'unsupported';
}

/**
 * `mode: ISTIO_MUTUAL`: mutual TLS with the workload's own certificates. The SNI and the
 * identities the server must prove depend on the destination, so the cluster resolves them
 * (`src/security/mesh-tls.ts`); what the rule itself says is kept here.
 */
export interface TlsIstioMutual {
  readonly kind: 'istio-mutual';
  /** Equal ids, equal settings. */
  readonly id: string;
  /** `DestinationRule shop/api spec.trafficPolicy.tls`, for messages. */
  readonly source: string;
  /** The rule's `sni`, replacing Istio's `outbound_.<port>_.<subset>_.<host>`. */
  readonly sni: string | undefined;
  /** The rule's `subjectAltNames`, replacing the destination's service accounts. */
  readonly subjectAltNames: readonly string[] | undefined;
}

/** What a destination's DestinationRule says about TLS, compiled once per configuration change. */
export type UpstreamTls = TlsOrigination | TlsDisabled | TlsUnsupported | TlsIstioMutual;

/** TLS for an `https://` URL to a destination without DestinationRule TLS. */
export const URL_TLS: TlsOrigination = Object.freeze({
  kind: 'originate',
  mode: 'URL',
  id: 'url',
  source: 'the https:// URL',
  ca: undefined,
  crl: undefined,
  cert: undefined,
  key: undefined,
  sni: undefined,
  subjectAltNames: undefined,
  insecureSkipVerify: false,
});

export const TLS_DISABLED: TlsDisabled = Object.freeze({ kind: 'disable' });

type Obj = Readonly<Record<string, unknown>>;

/** One problem found in a `tls` block: the field under it and what was expected. */
export interface TlsProblem {
  readonly field: readonly string[];
  readonly code: 'invalid-value' | 'required';
  readonly message: string;
  /** For a problem with a named file: what is wrong with it (an update refused at run time reports it). */
  readonly certificate?: CertificateProblem;
}

export interface TlsCompileInput {
  /** The `tls` block as written. */
  readonly spec: Obj;
  /** `DestinationRule ns/name` and the block's path, for `source` and unsupported-mode errors. */
  readonly resource: UnsupportedTls['resource'];
  readonly path: string;
  /** Reads a file named by the block (tests may stand in for the file system). */
  readonly readFile?: (path: string) => string;
  /**
   * False: the files are neither read nor checked (validation away from the workload); the
   * result is then only good for inspection, never for connections.
   */
  readonly readFiles?: boolean;
}

const readUtf8 = (path: string): string => readFileSync(path, 'utf8');

/**
 * Compiles one `ClientTLSSettings`: reads the files it names and checks them (PEM certificates,
 * CRL and private key that parse), applies istiod's own validation, and returns what connections
 * to the destination use, or the problems found (the configuration change is then rejected). A
 * key that does not match its certificate is no configuration problem but the files' state: the
 * settings carry it as `credential.refused` and fail closed at run time until the files change
 * (validity, which needs the mesh's clock, is checked there too: `client-credentials.ts`). `ISTIO_MUTUAL` compiles to {@link TlsIstioMutual};
 * `credentialName` to settings whose credentials the mesh reads from the Secret at run time.
 */
export function compileClientTls(input: TlsCompileInput): { readonly tls: UpstreamTls | undefined; readonly problems: readonly TlsProblem[] } {
  const { spec, resource, path } = input;
  const problems: TlsProblem[] = [];
  const problem = (field: string, message: string, code: TlsProblem['code'] = 'invalid-value', certificate?: CertificateProblem): void => {
    problems.push({ field: [field], code, message, ...(certificate ? { certificate } : {}) });
  };
  const mode = typeof spec['mode'] === 'string' ? spec['mode'] : 'DISABLE';
  const str = (field: string): string | undefined => {
    const v = spec[field];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const caFile = str('caCertificates');
  const crlFile = str('caCrl');
  const certFile = str('clientCertificate');
  const keyFile = str('privateKey');
  const credentialName = str('credentialName');
  const sni = str('sni');
  const sans = Array.isArray(spec['subjectAltNames'])
    ? (spec['subjectAltNames'] as unknown[]).filter((s): s is string => typeof s === 'string' && s !== '')
    : [];
  const skipVerify = spec['insecureSkipVerify'] === true;

  // istiod's validateTLS: such a rule is refused by `kubectl apply` against Istio.
  if (skipVerify) {
    if (caFile) problem('caCertificates', 'cannot specify caCertificates when insecureSkipVerify is true (istiod rejects this too)');
    if (credentialName) problem('credentialName', 'cannot specify credentialName when insecureSkipVerify is true (istiod rejects this too)');
    if (sans.length > 0) problem('subjectAltNames', 'cannot specify subjectAltNames when insecureSkipVerify is true (istiod rejects this too)');
  }
  if ((mode === 'SIMPLE' || mode === 'MUTUAL') && credentialName) {
    for (const field of ['clientCertificate', 'caCertificates', 'privateKey', 'caCrl']) {
      if (str(field)) problem(field, `cannot specify ${field} when credentialName is set: the credentials come from the Secret (istiod rejects this too)`);
    }
  } else if (mode === 'MUTUAL') {
    if (!certFile)
      problem('clientCertificate', 'expected the path of a PEM client certificate: mode MUTUAL requires clientCertificate (or credentialName)', 'required');
    if (!keyFile) problem('privateKey', 'expected the path of a PEM private key: mode MUTUAL requires privateKey (or credentialName)', 'required');
  }
  if (problems.length > 0) return { tls: undefined, problems };

  if (mode === 'DISABLE') return { tls: TLS_DISABLED, problems };
  if (mode === 'ISTIO_MUTUAL') {
    // Istio builds ISTIO_MUTUAL from the workload's certificates alone: files, credentialName and
    // insecureSkipVerify of the block are not read (a server is always verified).
    const source = `${resource.kind} ${resource.namespace}/${resource.name} ${path}`;
    const subjectAltNames = sans.length > 0 ? Object.freeze(sans) : undefined;
    return {
      tls: Object.freeze({ kind: 'istio-mutual', id: `istio:${JSON.stringify([sni ?? null, subjectAltNames ?? null])}`, source, sni, subjectAltNames }),
      problems,
    };
  }
  if (mode !== 'SIMPLE' && mode !== 'MUTUAL') {
    problem('mode', `expected one of DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL, found ${JSON.stringify(mode)}`);
    return { tls: undefined, problems };
  }
  if (credentialName) {
    if (credentialName.includes('://')) {
      return {
        tls: {
          kind: 'unsupported',
          resource,
          path: `${path}.credentialName`,
          what: `credentialName ${JSON.stringify(credentialName)} (only the name of a Kubernetes Secret is read)`,
        },
        problems,
      };
    }
    // Read at run time through the Kubernetes API, in the rule's namespace (a rule with a
    // workloadSelector, the only kind Istio reads it for at a sidecar, is in the workload's).
    const credential: TlsSecretCredential = Object.freeze({
      kind: 'secret',
      namespace: resource.namespace,
      name: credentialName,
      resource,
      path: `${path}.credentialName`,
    });
    const settings = {
      mode,
      ca: undefined,
      crl: undefined,
      cert: undefined,
      key: undefined,
      sni,
      subjectAltNames: sans.length > 0 ? Object.freeze(sans) : undefined,
      insecureSkipVerify: skipVerify,
    } as const;
    const id = `secret:${createHash('sha256')
      .update(JSON.stringify([settings, credential.namespace, credential.name]))
      .digest('base64url')}`;
    return {
      tls: Object.freeze({ kind: 'originate', id, source: `${resource.kind} ${resource.namespace}/${resource.name} ${path}`, ...settings, credential }),
      problems,
    };
  }

  if (input.readFiles === false) {
    const settings = {
      mode,
      ca: undefined,
      crl: undefined,
      cert: undefined,
      key: undefined,
      sni,
      subjectAltNames: sans.length > 0 ? sans : undefined,
      insecureSkipVerify: skipVerify,
    } as const;
    return {
      tls: Object.freeze({
        kind: 'originate',
        id: `unread:${JSON.stringify({ caFile, crlFile, certFile, keyFile, sni, sans, skipVerify, mode })}`,
        source: `${resource.kind} ${resource.namespace}/${resource.name} ${path}`,
        ...settings,
      }),
      problems,
    };
  }
  const read = input.readFile ?? readUtf8;
  const file = (field: string, name: string, what: string): string | undefined => {
    try {
      return read(name);
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      problem(
        field,
        `cannot read ${JSON.stringify(name)} (${(error as Error).message}): expected a file of ${what}`,
        'invalid-value',
        missing ? 'missing' : 'unreadable',
      );
      return undefined;
    }
  };

  let ca: string | undefined;
  if (caFile) {
    const text = file('caCertificates', caFile, 'PEM CA certificates');
    if (text !== undefined) {
      const error = certificatesError(text);
      if (error) problem('caCertificates', `${JSON.stringify(caFile)} ${error}: expected PEM CA certificates (-----BEGIN CERTIFICATE-----)`);
      else ca = text;
    }
  }
  let crl: string | undefined;
  if (crlFile) {
    const text = file('caCrl', crlFile, 'a PEM certificate revocation list');
    if (text !== undefined) {
      const error = crlError(text);
      if (error) problem('caCrl', `${JSON.stringify(crlFile)} ${error}: expected a PEM certificate revocation list (-----BEGIN X509 CRL-----)`);
      else crl = text;
    }
  }
  let cert: string | undefined;
  let key: string | undefined;
  let refused: TlsFileRefusal | undefined;
  if (mode === 'MUTUAL' && certFile && keyFile) {
    const certText = file('clientCertificate', certFile, 'a PEM client certificate');
    let leaf: X509Certificate | undefined;
    if (certText !== undefined) {
      const error = certificatesError(certText);
      if (error) problem('clientCertificate', `${JSON.stringify(certFile)} ${error}: expected a PEM client certificate (-----BEGIN CERTIFICATE-----)`);
      else {
        cert = certText;
        leaf = new X509Certificate(firstCertificate(certText)!);
      }
    }
    const keyText = file('privateKey', keyFile, 'a PEM private key');
    let keyObject: KeyObject | undefined;
    if (keyText !== undefined) {
      try {
        keyObject = createPrivateKey(keyText);
        key = keyText;
      } catch (error) {
        problem(
          'privateKey',
          `${JSON.stringify(keyFile)} does not parse (${(error as Error).message}): expected an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)`,
        );
      }
    }
    if (leaf && keyObject && !leaf.checkPrivateKey(keyObject)) {
      // A pair out of step (caught mid-rotation) is the files' state, not the rule's mistake: the
      // rule is accepted and its requests fail closed until a matching pair is written.
      refused = Object.freeze({
        field: 'privateKey',
        problem: 'key-mismatch',
        file: keyFile,
        message: `the private key in ${JSON.stringify(keyFile)} does not match the certificate in ${JSON.stringify(certFile)} (clientCertificate): expected the key of that certificate`,
      });
      cert = undefined;
      key = undefined;
    }
  }
  if (problems.length > 0) return { tls: undefined, problems };

  // Last, what OpenSSL itself makes of them together (the same as every connection will).
  try {
    createSecureContext({ ...(ca ? { ca } : {}), ...(crl ? { crl } : {}), ...(cert && key ? { cert, key } : {}) });
  } catch (error) {
    problem(mode === 'MUTUAL' ? 'clientCertificate' : 'caCertificates', `OpenSSL refuses the TLS settings: ${(error as Error).message}`);
    return { tls: undefined, problems };
  }
  const settings = {
    mode,
    ca,
    crl,
    cert,
    key,
    sni,
    subjectAltNames: sans.length > 0 ? Object.freeze(sans) : undefined,
    insecureSkipVerify: skipVerify,
  } as const;
  const id = createHash('sha256').update(JSON.stringify(settings)).digest('base64url');
  const files = [caFile, crlFile, mode === 'MUTUAL' ? certFile : undefined, mode === 'MUTUAL' ? keyFile : undefined].filter(
    (f): f is string => f !== undefined,
  );
  const credential: TlsFileCredential | undefined =
    files.length > 0
      ? Object.freeze({
          kind: 'files',
          key: JSON.stringify([mode, caFile ?? null, crlFile ?? null, certFile ?? null, keyFile ?? null]),
          files: Object.freeze(files),
          spec,
          resource,
          path,
          ...(refused ? { refused } : {}),
        })
      : undefined;
  return {
    tls: Object.freeze({
      kind: 'originate',
      id,
      source: `${resource.kind} ${resource.namespace}/${resource.name} ${path}`,
      ...settings,
      ...(credential ? { credential } : {}),
    }),
    problems,
  };
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;
const CRL = /-----BEGIN X509 CRL-----[^-]+-----END X509 CRL-----/g;

export function firstCertificate(text: string): string | undefined {
  return text.match(CERTIFICATE)?.[0];
}

/** Why `text` is not a PEM certificate bundle; undefined when every certificate in it parses. */
export function certificatesError(text: string): string | undefined {
  const blocks = text.match(CERTIFICATE) ?? [];
  if (blocks.length === 0) return 'holds no PEM certificate';
  for (let i = 0; i < blocks.length; i++) {
    try {
      new X509Certificate(blocks[i]!);
    } catch (error) {
      return `has a certificate (the ${ordinal(i + 1)}) that does not parse (${(error as Error).message})`;
    }
  }
  return undefined;
}

export function crlError(text: string): string | undefined {
  if (!text.match(CRL)?.length) return 'holds no PEM CRL';
  try {
    createSecureContext({ crl: text });
    return undefined;
  } catch (error) {
    return `does not parse (${(error as Error).message})`;
  }
}

function ordinal(n: number): string {
  return n === 1 ? '1st' : n === 2 ? '2nd' : n === 3 ? '3rd' : `${n}th`;
}
