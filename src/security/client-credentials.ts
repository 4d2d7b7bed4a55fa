import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { realpathSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { CancelTimer, MeshClock } from '../clock.js';
import type { KubeWatcher } from '../kubernetes/collection.js';
import { watchFiles } from './certificate-source.js';
import { CertificateError } from './errors.js';
import type { ClientCredentialRejection, TlsCredentialFailure } from './errors.js';
import { KubernetesSecretSource } from './kubernetes-secret-source.js';
import type { SecretParts } from './kubernetes-secret-source.js';
import type { TlsCredentialRef, TlsFileCredential, TlsOrigination, TlsSecretCredential, TlsUnavailable } from './tls-settings.js';
import { certificatesError, compileClientTls, crlError, firstCertificate } from './tls-settings.js';

export interface ClientCredentialsOptions {
  /** The mesh's Kubernetes API watcher; without it a `credentialName` fails closed. */
  readonly watcher: KubeWatcher | undefined;
  /** Debounce and file-poll timers (background). */
  readonly clock: MeshClock;
  /** How often named files are stat'ed in case a watch missed a change, in ms. Default 2000; 0 turns polling off. */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change before it is read, in ms. Default 100. */
  readonly debounceMs?: number;
}

export interface ClientCredentialsEvents {
  /** Some credentials changed (or could now be read, or not): settings resolved before are stale. */
  changed: [];
  /** A new set passed its checks and is used from now on (a Secret's first set too). `source` names the Secret or the rule. */
  accepted: [source: string];
  /** A set was refused (reported once per distinct problem); `kept` says whether the last good one serves. */
  rejected: [rejection: ClientCredentialRejection];
}

interface Material {
  readonly id: string;
  readonly ca: string | undefined;
  readonly crl: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
}

/** Why an entry's credentials cannot be used; `path` is the field at fault (the block's path when unknown). */
interface Failure {
  readonly reason: string;
  readonly cause?: Error | undefined;
  readonly path?: string | undefined;
}

interface Entry {
  readonly name: string;
  material: Material | undefined;
  failure: Failure | undefined;
  /** For a Secret: `namespace/name`, the key of its shared source. */
  readonly secret: string | undefined;
  /** For files: the field path naming each file (`spec.trafficPolicy.tls.clientCertificate`), for errors. */
  fields: ReadonlyMap<string, string> | undefined;
  /** The refs that resolved through it since the last `retain`, which retires those of replaced snapshots. */
  readonly refs: Set<TlsCredentialRef>;
  /** Set while the first read runs. */
  pending: Promise<void> | undefined;
  loading: Promise<void> | undefined;
  again: boolean;
  debounce: CancelTimer | undefined;
  /** Reads again when a certificate refused as not yet valid becomes valid. */
  validFrom: CancelTimer | undefined;
  stop: () => void;
  readonly load: () => Promise<Material>;
}

const DEFAULT_POLL_INTERVAL_MS = 2_000;
const DEFAULT_DEBOUNCE_MS = 100;
const READ_ATTEMPTS = 3;

/**
 * The client credentials of DestinationRule `tls` blocks, kept current: a `credentialName`
 * Secret read and watched through the Kubernetes API, and the files a block names, watched and
 * read again on a change. A new set is used only once it passed its checks (the key matches the
 * certificate, everything parses, the client certificate is within its validity), so a new
 * certificate is never paired with an old key; a set that fails leaves the last good one serving
 * (a deleted Secret leaves none: requests then fail closed) and is reported (`rejected`). Settings
 * resolved with other credentials get another `id`, hence other pools. What the configuration in
 * force no longer names stops being watched (`retain`).
 */
export class ClientCredentials extends EventEmitter<ClientCredentialsEvents> {
  private readonly entries = new Map<string, Entry>();
  /** One source (two watches) per Secret, shared by the modes that read it. */
  private readonly secrets = new Map<string, { readonly source: KubernetesSecretSource; users: number }>();
  private readonly resolved = new WeakMap<TlsOrigination, { material: Material; tls: TlsOrigination }>();
  /** The set each ref last resolved to: what a replaced snapshot's settings keep using (Envoy's old cluster keeps its secrets until drained). */
  private readonly held = new WeakMap<TlsCredentialRef, Material>();
  /** Refs of snapshots that were replaced and whose credentials are no longer watched: never watched again. */
  private readonly retired = new WeakSet<TlsCredentialRef>();
  /** The refs and entry keys of the snapshot in force (the last `retain`). */
  private currentRefs: readonly TlsCredentialRef[] = [];
  private currentKeys = new Set<string>();
  private readonly pollIntervalMs: number;
  private readonly debounceMs: number;
  private closed = false;

  constructor(private readonly options: ClientCredentialsOptions) {
    super();
    this.pollIntervalMs = Math.max(0, options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    this.debounceMs = Math.max(0, options.debounceMs ?? DEFAULT_DEBOUNCE_MS);
  }

  /**
   * `tls` with the credentials in force now, or why there are none (a Secret fails closed until
   * it was read and passed its checks). Settings without run-time credentials come back as they are.
   */
  resolve(tls: TlsOrigination): TlsOrigination | TlsUnavailable {
    const ref = tls.credential;
    if (!ref) return tls;
    const key = entryKey(tls, ref);
    let entry = this.entries.get(key);
    if (!entry) {
      // Settings of a replaced snapshot whose credentials were released (a request that began
      // under it): their watches stay closed. They keep the set they held, as Envoy's old
      // cluster keeps its secrets until drained; settings that never held one fail closed.
      if (this.retired.has(ref) && !this.currentKeys.has(key)) {
        const held = this.held.get(ref);
        if (held) return this.withMaterial(tls, held);
        const reason = 'the configuration in force no longer names them (the DestinationRule changed after this request began), so they are not read';
        return unavailable(ref, { reason }, undefined);
      }
      if (ref.kind === 'secret') {
        if (!this.options.watcher) {
          const reason =
            "no Kubernetes API is configured to read it from (credentialName is read through the API: use discovery 'kubernetes', or 'auto' in a pod)";
          return unavailable(ref, { reason }, undefined);
        }
        entry = this.secretEntry(ref, tls.mode);
      } else {
        entry = this.fileEntry(ref, tls);
      }
    }
    entry.refs.add(ref);
    const material = entry.material;
    // No set passed its checks (a Secret not read yet, files refused since the start): fail closed.
    if (!material) return unavailable(ref, entry.failure ?? { reason: 'it has not been read yet' }, entry.pending);
    this.held.set(ref, material);
    return this.withMaterial(tls, material);
  }

  private withMaterial(tls: TlsOrigination, material: Material): TlsOrigination {
    const memo = this.resolved.get(tls);
    if (memo && memo.material === material) return memo.tls;
    const out: TlsOrigination = Object.freeze({
      ...tls,
      ca: material.ca,
      crl: material.crl,
      cert: material.cert,
      key: material.key,
      credential: undefined,
      id: `${tls.id}|${material.id}`,
    });
    this.resolved.set(tls, { material, tls: out });
    return out;
  }

  /**
   * The snapshot that became current names these settings (its DestinationRules' `tls` blocks
   * with run-time credentials): the Secrets and files no longer named stop being watched now,
   * their watches on the API server closed, rather than at `close()`.
   */
  retain(inUse: Iterable<TlsOrigination>): void {
    const keep = new Set<string>();
    const refs: TlsCredentialRef[] = [];
    for (const tls of inUse) {
      if (!tls.credential) continue;
      keep.add(entryKey(tls, tls.credential));
      refs.push(tls.credential);
    }
    // The refs of replaced snapshots (the last one's, and any that resolved since): a request
    // still running on one must not open their watches again once their entry is gone.
    const now = new Set(refs);
    for (const ref of this.currentRefs) if (!now.has(ref)) this.retired.add(ref);
    this.currentRefs = refs;
    this.currentKeys = keep;
    for (const [key, entry] of [...this.entries]) {
      for (const ref of entry.refs) if (!now.has(ref)) this.retired.add(ref);
      entry.refs.clear();
      if (keep.has(key)) continue;
      this.entries.delete(key);
      this.stopEntry(entry);
    }
  }

  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) this.stopEntry(entry);
    this.entries.clear();
  }

  private stopEntry(entry: Entry): void {
    entry.stop();
    entry.debounce?.();
    entry.debounce = undefined;
    entry.validFrom?.();
    entry.validFrom = undefined;
    if (entry.secret === undefined) return;
    const shared = this.secrets.get(entry.secret);
    if (!shared || --shared.users > 0) return;
    this.secrets.delete(entry.secret);
    shared.source.release();
  }

  private secretEntry(ref: TlsSecretCredential, mode: TlsOrigination['mode']): Entry {
    const secret = `${ref.namespace}/${ref.name}`;
    let shared = this.secrets.get(secret);
    if (!shared) {
      shared = { source: new KubernetesSecretSource(this.options.watcher!, { namespace: ref.namespace, name: ref.name }), users: 0 };
      this.secrets.set(secret, shared);
    }
    shared.users++;
    const source = shared.source;
    const entry = this.entry(`secret:${mode}:${secret}`, `Secret ${secret}`, secret, undefined, async () =>
      secretMaterial(await source.readParts(), mode, `Secret ${secret}`, this.options.clock.wallNow()),
    );
    entry.stop = source.watch(() => this.schedule(entry));
    entry.pending = this.reload(entry);
    return entry;
  }

  private fileEntry(ref: TlsFileCredential, tls: TlsOrigination): Entry {
    // The snapshot read the files: their content is the first set, unless refused here as a
    // change of them would be (expired, not valid yet, a key of another certificate). Then no
    // set serves: requests fail closed until the files change (or become valid).
    let initial: Material | undefined;
    try {
      initial = checkedFiles(ref, tls, this.options.clock.wallNow());
    } catch {
      initial = undefined;
    }
    const entry = this.entry(
      `files:${ref.key}`,
      `${ref.resource.kind} ${ref.resource.namespace}/${ref.resource.name} ${ref.path}`,
      undefined,
      initial,
      async () => fileMaterial(ref, this.options.clock.wallNow()),
    );
    entry.fields = fieldPaths(ref);
    entry.stop = watchFiles(ref.files, () => this.schedule(entry), this.pollIntervalMs, this.options.clock);
    // Watched only from now on (the first request): a change since the snapshot read them is
    // read now. Without a good set requests wait for that read (a fixed pair may be there), which
    // reports the refusal if it stands.
    const fresh = this.reload(entry);
    if (!initial) entry.pending = fresh;
    return entry;
  }

  private entry(key: string, name: string, secret: string | undefined, initial: Material | undefined, load: () => Promise<Material>): Entry {
    const entry: Entry = {
      name,
      secret,
      fields: undefined,
      refs: new Set(),
      material: initial,
      failure: undefined,
      pending: undefined,
      loading: undefined,
      again: false,
      debounce: undefined,
      validFrom: undefined,
      stop: () => undefined,
      load,
    };
    this.entries.set(key, entry);
    return entry;
  }

  private schedule(entry: Entry): void {
    if (this.closed) return;
    entry.debounce?.();
    entry.debounce = this.options.clock.schedule(this.debounceMs, () => void this.reload(entry), 'background');
  }

  private reload(entry: Entry): Promise<void> {
    if (entry.loading) {
      entry.again = true;
      return entry.loading;
    }
    entry.loading = this.loadOnce(entry).finally(() => {
      entry.loading = undefined;
      if (entry.again && !this.closed) {
        entry.again = false;
        void this.reload(entry);
      }
    });
    return entry.loading;
  }

  private async loadOnce(entry: Entry): Promise<void> {
    let next: Material | undefined;
    let error: Error | undefined;
    try {
      next = await entry.load();
    } catch (e) {
      error = e instanceof Error ? e : new Error(String(e));
    }
    // Closed, or no longer named by the configuration: nobody is to hear of it.
    if (this.closed || ![...this.entries.values()].includes(entry)) return;
    // Cleared before anyone hears of it: a request that waited looks again and must not wait again.
    entry.pending = undefined;
    const before = entry.material;
    const failureBefore = entry.failure?.reason;
    entry.validFrom?.();
    entry.validFrom = undefined;
    if (next) {
      entry.failure = undefined;
      if (!before || before.id !== next.id) {
        entry.material = next;
        this.emit('accepted', entry.name);
      }
    } else if (error) {
      const refused = error instanceof CertificateError ? error : new CertificateError('unreadable', entry.name, error.message, { cause: error });
      // A Secret deleted takes its credentials with it; any other bad update leaves the last good set.
      if (refused.problem === 'missing' && entry.secret !== undefined && !refused.file.includes(' key ')) entry.material = undefined;
      this.refuse(entry, refused, failureBefore);
    }
    if (entry.material !== before || entry.failure?.reason !== failureBefore) this.emit('changed');
  }

  /** Records why `entry`'s latest set was refused, reports it once, and reads again when a not-yet-valid certificate becomes valid. */
  private refuse(entry: Entry, refused: CertificateError, failureBefore: string | undefined): void {
    entry.failure = { reason: refused.message, cause: refused, path: entry.fields?.get(refused.file) };
    if (refused.message !== failureBefore) this.emit('rejected', { source: entry.name, error: refused, kept: entry.material !== undefined });
    // Clock skew with the issuer: read again once it is valid (a second late, as for workload certificates).
    if (refused.validFrom) {
      const clock = this.options.clock;
      entry.validFrom = clock.schedule(Math.max(0, refused.validFrom.getTime() - clock.wallNow()) + 1000, () => void this.reload(entry), 'background');
    }
  }
}

function unavailable(ref: TlsCredentialRef, failure: Failure, pending: Promise<void> | undefined): TlsUnavailable {
  const details: TlsCredentialFailure = {
    resource: ref.resource,
    path: failure.path ?? ref.path,
    secret: ref.kind === 'secret' ? `${ref.namespace}/${ref.name}` : undefined,
    files: ref.kind === 'files' ? ref.files : undefined,
    reason: failure.reason,
    cause: failure.cause,
  };
  return { kind: 'unavailable', failure: details, pending };
}

/** Each file a block names, with the path of the field naming it. */
function fieldPaths(ref: TlsFileCredential): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const field of ['clientCertificate', 'privateKey', 'caCertificates', 'caCrl']) {
    const file = ref.spec[field];
    if (typeof file === 'string' && file !== '' && !out.has(file)) out.set(file, `${ref.path}.${field}`);
  }
  return out;
}

function material(ca: string | undefined, crl: string | undefined, cert: string | undefined, key: string | undefined): Material {
  const id = createHash('sha256')
    .update(JSON.stringify([ca ?? null, crl ?? null, cert ?? null, key ?? null]))
    .digest('base64url');
  return { id, ca, crl, cert, key };
}

/** The Secret's parts checked for `mode`: MUTUAL needs the certificate and its key; SIMPLE the CA. */
function secretMaterial(parts: SecretParts, mode: TlsOrigination['mode'], secret: string, now: number): Material {
  const has = `the Secret has ${parts.keys.join(', ') || 'no data'}`;
  const { chain, key, roots, crl } = parts;
  if (roots) {
    const error = certificatesError(roots.pem);
    if (error) throw new CertificateError('invalid', roots.path, `${error}: expected PEM CA certificates`);
  } else if (mode === 'SIMPLE') {
    throw new CertificateError(
      'missing',
      `${secret} key ${parts.format.roots}`,
      `no CA certificates to verify the server with (${has}; or a companion <name>-cacert Secret)`,
    );
  }
  if (crl) {
    const error = crlError(crl.pem);
    if (error) throw new CertificateError('invalid', crl.path, `${error}: expected a PEM certificate revocation list`);
  }
  let cert: string | undefined;
  let keyPem: string | undefined;
  if (mode === 'MUTUAL') {
    if (!chain) throw new CertificateError('missing', `${secret} key ${parts.format.chain}`, `no client certificate (${has})`);
    if (!key) throw new CertificateError('missing', `${secret} key ${parts.format.key}`, `no private key (${has})`);
    const error = certificatesError(chain.pem);
    if (error) throw new CertificateError('invalid', chain.path, `${error}: expected a PEM client certificate`);
    let keyObject;
    try {
      keyObject = createPrivateKey(key.pem);
    } catch (e) {
      throw new CertificateError('invalid', key.path, `does not parse (${(e as Error).message}): expected an unencrypted PEM private key`);
    }
    const leaf = new X509Certificate(firstCertificate(chain.pem)!);
    if (!leaf.checkPrivateKey(keyObject)) {
      throw new CertificateError('key-mismatch', key.path, `does not match the certificate in ${chain.path}`);
    }
    checkValidity(leaf, chain.path, now);
    cert = chain.pem;
    keyPem = key.pem;
  }
  try {
    createSecureContext({ ...(roots ? { ca: roots.pem } : {}), ...(crl ? { crl: crl.pem } : {}), ...(cert && keyPem ? { cert, key: keyPem } : {}) });
  } catch (e) {
    throw new CertificateError('invalid', chain?.path ?? roots?.path ?? secret, `OpenSSL refuses the credentials: ${(e as Error).message}`);
  }
  return material(roots?.pem, crl?.pem, cert, keyPem);
}

/**
 * The block's files read and checked again as the snapshot did, and the client certificate
 * within its validity; read again if a `..data` swap happened meanwhile.
 */
async function fileMaterial(ref: TlsFileCredential, now: number): Promise<Material> {
  for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
    const before = ref.files.map(resolved);
    const { tls, problems } = compileClientTls({ spec: ref.spec, resource: ref.resource, path: ref.path });
    const after = ref.files.map(resolved);
    if (!after.every((p, i) => p === before[i])) continue;
    if (tls?.kind === 'originate') return checkedFiles(tls.credential?.kind === 'files' ? tls.credential : ref, tls, now);
    const first = problems[0];
    const field = first?.field[0];
    const named = field !== undefined ? ref.spec[field] : undefined;
    const message = problems.map((p) => `${ref.path}.${p.field.join('.')}: ${p.message}`).join('; ');
    throw new CertificateError(first?.certificate ?? 'invalid', typeof named === 'string' ? named : ref.path, message);
  }
  throw new CertificateError('unreadable', ref.files.join(', '), 'the files kept changing while being read');
}

/**
 * The files as compiled, unless refused: a key of another certificate (found by the compile), a
 * client certificate outside its validity (the server would only refuse the handshake).
 */
function checkedFiles(ref: TlsFileCredential, tls: TlsOrigination, now: number): Material {
  if (ref.refused) throw new CertificateError(ref.refused.problem, ref.refused.file, ref.refused.message);
  if (tls.cert) {
    const certFile = ref.spec['clientCertificate'];
    checkValidity(new X509Certificate(firstCertificate(tls.cert)!), typeof certFile === 'string' ? certFile : `${ref.path}.clientCertificate`, now);
  }
  return material(tls.ca, tls.crl, tls.cert, tls.key);
}

/** A client certificate outside its validity would only be refused by the server: refused here, with the dates. */
function checkValidity(leaf: X509Certificate, file: string, now: number): void {
  const from = new Date(leaf.validFrom);
  const to = new Date(leaf.validTo);
  if (now > to.getTime()) throw new CertificateError('expired', file, `the client certificate expired at ${to.toISOString()}`);
  if (now < from.getTime())
    throw new CertificateError('not-yet-valid', file, `the client certificate is not valid before ${from.toISOString()}`, { validFrom: from });
}

function entryKey(tls: TlsOrigination, ref: TlsCredentialRef): string {
  return ref.kind === 'secret' ? `secret:${tls.mode}:${ref.namespace}/${ref.name}` : `files:${ref.key}`;
}

function resolved(path: string): string {
  try {
    return realpathSync(path);
  } catch (error) {
    return `${path}:${(error as NodeJS.ErrnoException).code ?? 'error'}`;
  }
}
