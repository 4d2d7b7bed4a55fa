import type { KubeCollection, KubeObject, KubeResourceType, KubeWatcher, KubeWatchOptions } from '../kubernetes/collection.js';
import type { CertificateFile, CertificateFiles } from './certificate-bundle.js';
import type { CertificateSource } from './certificate-source.js';
import { KubernetesApiError } from '../kubernetes/errors.js';
import { CertificateError } from './errors.js';

const SECRETS: KubeResourceType = { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true };

interface SecretObject extends KubeObject {
  readonly data?: Readonly<Record<string, string>>;
}

/** Which Secret: Istio's `credentialName` names one in the workload's namespace. */
export interface SecretReference {
  readonly name: string;
  readonly namespace: string;
}

/** Key names of the two Secret formats Istio reads for `credentialName`. */
const FORMATS = [
  { chain: 'tls.crt', key: 'tls.key', roots: 'ca.crt', crl: 'ca.crl' },
  { chain: 'cert', key: 'key', roots: 'cacert', crl: 'crl' },
] as const;

/** What a Secret holds of the parts (each optional: a SIMPLE client needs the roots only). */
export interface SecretParts {
  /** The key names of the Secret's format. */
  readonly format: (typeof FORMATS)[number];
  /** The keys the Secret has, for messages. */
  readonly keys: readonly string[];
  readonly chain?: CertificateFile;
  readonly key?: CertificateFile;
  readonly roots?: CertificateFile;
  readonly crl?: CertificateFile;
}

/**
 * Workload credentials in a Kubernetes Secret read through the API, as Istio reads a
 * `credentialName`: a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`, `ca.crt`) or a generic
 * one (`cert`, `key`, `cacert`); when the Secret holds no roots they come from the companion
 * Secret `<name>-cacert` (key `cacert` or `ca.crt`), Istio's convention. Watched: an update of
 * either Secret is read and validated like a mounted file's.
 */
export class KubernetesSecretSource implements CertificateSource {
  readonly id: string;
  private readonly secret: KubeCollection<SecretObject>;
  private readonly companion: KubeCollection<SecretObject>;

  constructor(
    private readonly watcher: KubeWatcher,
    readonly ref: SecretReference,
  ) {
    this.id = `secret:${ref.namespace}/${ref.name}`;
    this.secret = watcher.collection<SecretObject>(SECRETS, this.watchOptions(ref.name));
    this.companion = watcher.collection<SecretObject>(SECRETS, this.watchOptions(`${ref.name}-cacert`));
  }

  /** Stops the watches of the Secret and its companion: nothing needs them any more. */
  release(): void {
    this.watcher.release?.(SECRETS, this.watchOptions(this.ref.name));
    this.watcher.release?.(SECRETS, this.watchOptions(`${this.ref.name}-cacert`));
  }

  async read(): Promise<CertificateFiles> {
    const parts = await this.readParts();
    const need = (file: CertificateFile | undefined, key: string): CertificateFile => {
      if (file) return file;
      throw new CertificateError('missing', `${this.describe(this.ref.name)} key ${key}`, `no such key (the Secret has ${parts.keys.join(', ') || 'no data'})`);
    };
    return {
      chain: need(parts.chain, parts.format.chain),
      key: need(parts.key, parts.format.key),
      roots: need(parts.roots, `${parts.format.roots} (or ${this.ref.name}-cacert)`),
    };
  }

  /**
   * Whatever the Secret holds of the parts, each named after its Secret and key, and its CRL
   * (`ca.crl` or `crl`). Throws a {@link CertificateError}: `missing` (no such Secret),
   * `unreadable` (the API refused or failed).
   */
  async readParts(): Promise<SecretParts> {
    const namespace = this.ref.namespace;
    const [own, companionRead] = await Promise.allSettled([
      synced(this.secret, this.describe(this.ref.name), namespace, this.ref.name),
      synced(this.companion, this.describe(`${this.ref.name}-cacert`), namespace, `${this.ref.name}-cacert`),
    ]);
    if (own.status === 'rejected') throw own.reason;
    const secret = this.secret.items.get(`${this.ref.namespace}/${this.ref.name}`);
    if (!secret) throw new CertificateError('missing', this.describe(this.ref.name), 'no such Secret');
    const data = secret.data ?? {};
    const format = FORMATS.find((f) => data[f.chain] !== undefined) ?? FORMATS[0];
    const part = (secretName: string, values: Readonly<Record<string, string>>, key: string): CertificateFile | undefined => {
      const value = values[key];
      return value === undefined ? undefined : { path: `${this.describe(secretName)} key ${key}`, pem: Buffer.from(value, 'base64').toString('utf8') };
    };
    let roots = part(this.ref.name, data, format.roots);
    if (!roots) {
      // Only then does the companion matter: unreadable (a Role naming just the Secret), the CA it may hold is unknown.
      if (companionRead.status === 'rejected') throw companionRead.reason;
      const companionData = this.companion.items.get(`${this.ref.namespace}/${this.ref.name}-cacert`)?.data ?? {};
      roots = part(`${this.ref.name}-cacert`, companionData, 'cacert') ?? part(`${this.ref.name}-cacert`, companionData, 'ca.crt');
    }
    const chain = part(this.ref.name, data, format.chain);
    const key = part(this.ref.name, data, format.key);
    const crl = part(this.ref.name, data, format.crl);
    return {
      format,
      keys: Object.keys(data),
      ...(chain ? { chain } : {}),
      ...(key ? { key } : {}),
      ...(roots ? { roots } : {}),
      ...(crl ? { crl } : {}),
    };
  }

  watch(onChange: () => void): () => void {
    // A status change too: a watch that failed (403) and now lists an empty namespace brings no object change.
    const stops = [this.secret, this.companion].flatMap((c) => [c.onChange(() => onChange()), c.onStatus(() => onChange())]);
    return () => {
      for (const stop of stops) stop();
    };
  }

  private watchOptions(name: string): KubeWatchOptions {
    return { namespace: this.ref.namespace, fieldSelector: `metadata.name=${name}` };
  }

  private describe(name: string): string {
    return `Secret ${this.ref.namespace}/${name}`;
  }
}

/** Resolves once the collection has listed; rejects when its watch fails before that (the API unreachable, 403). */
function synced(collection: KubeCollection<SecretObject>, what: string, namespace: string, name: string): Promise<void> {
  if (collection.status.synced) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const fail = (error: Error) => {
      stop();
      reject(new CertificateError('unreadable', what, unreadable(error, namespace, name), { cause: error }));
    };
    const stop = collection.onStatus((status) => {
      if (status.synced) {
        stop();
        resolve();
      } else if (status.error) {
        fail(status.error);
      }
    });
    if (collection.status.error) fail(collection.status.error);
    collection.synced.then(
      () => {
        stop();
        resolve();
      },
      (error: unknown) => fail(error instanceof Error ? error : new Error(String(error))),
    );
  });
}

/** Why the API did not hand the Secret over; for a 403, the RBAC rule that is missing. */
function unreadable(error: Error, namespace: string, name: string): string {
  if (!isForbidden(error)) return `cannot be read from the Kubernetes API: ${error.message}`;
  return (
    `reading it is forbidden by RBAC (the API answered 403: ${error.message}): the mesh's service account needs a Role in namespace ${namespace} ` +
    `that allows get, list and watch on secrets (apiGroups [""], resources [secrets]; with resourceNames, ${name} among them), bound to it with a RoleBinding`
  );
}

function isForbidden(error: Error): boolean {
  return error instanceof KubernetesApiError ? error.status === 403 : /\b403\b/.test(error.message);
}
