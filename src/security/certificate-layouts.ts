import type { MeshClock } from '../clock.js';
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { CertificatePaths, CertificateSource } from './certificate-source.js';
import { FileCertificateSource } from './certificate-source.js';
import type { KubeWatcher } from '../kubernetes/collection.js';
import type { SecretReference } from './kubernetes-secret-source.js';
import { KubernetesSecretSource } from './kubernetes-secret-source.js';
import { SecurityOptionError } from './errors.js';

/**
 * How a directory of workload credentials names its files:
 * - `istio`: `cert-chain.pem`, `key.pem`, `root-cert.pem`. Istio's file-mounted certificates
 *   (`/etc/certs`), the directory pilot-agent writes with `OUTPUT_CERTS`, and proxyless gRPC's
 *   `/var/lib/istio/data`.
 * - `kubernetes-tls`: `tls.crt`, `tls.key`, `ca.crt`. A `kubernetes.io/tls` Secret as cert-manager
 *   writes it, mounted as a volume.
 * - `cert-manager-csi`: the same names, written by cert-manager's csi-driver (and csi-driver-spiffe)
 *   into an ephemeral volume; its `csi.cert-manager.io/*-file` attributes rename them (pass `files`).
 * - `spiffe-helper`: `svid.pem`, `svid_key.pem`, `svid_bundle.pem`, as the SPIFFE helper writes
 *   them from the SPIRE Workload API (the bundle may hold several roots).
 * - `gke-workload`: `certificates.pem`, `private_key.pem`, `ca_certificates.pem` in
 *   `/var/run/secrets/workload-spiffe-credentials` (GKE workload certificates, managed Istio).
 */
export type CertificateLayout = 'istio' | 'kubernetes-tls' | 'cert-manager-csi' | 'spiffe-helper' | 'gke-workload';

export const LAYOUT_FILES: Readonly<Record<CertificateLayout, CertificatePaths>> = {
  istio: { chain: 'cert-chain.pem', key: 'key.pem', roots: 'root-cert.pem' },
  'kubernetes-tls': { chain: 'tls.crt', key: 'tls.key', roots: 'ca.crt' },
  'cert-manager-csi': { chain: 'tls.crt', key: 'tls.key', roots: 'ca.crt' },
  'spiffe-helper': { chain: 'svid.pem', key: 'svid_key.pem', roots: 'svid_bundle.pem' },
  'gke-workload': { chain: 'certificates.pem', key: 'private_key.pem', roots: 'ca_certificates.pem' },
};

/** Where the mesh looks for certificates when none are configured, in this order. */
export const WELL_KNOWN_CERTIFICATE_DIRECTORIES: readonly { readonly directory: string; readonly layout: CertificateLayout }[] = [
  { directory: '/etc/certs', layout: 'istio' },
  { directory: '/var/lib/istio/data', layout: 'istio' },
  { directory: '/etc/istio-output-certs', layout: 'istio' },
  { directory: '/var/run/secrets/workload-spiffe-credentials', layout: 'gke-workload' },
];

/**
 * Which workload certificates the mesh uses (all paths on the local file system):
 * - `directory` with an optional `layout` (default: whichever layout's certificate file exists
 *   there, else `istio`), and optional `files` to rename single parts (relative to the directory);
 * - or `files` alone with all three paths;
 * - or `secret`: a Kubernetes Secret read through the API (needs `discovery: 'kubernetes'` and RBAC
 *   to get, list and watch Secrets), as Istio reads a `credentialName`;
 * - or `source`: any {@link CertificateSource} of your own.
 */
export interface CertificateOptions {
  readonly directory?: string;
  /** A Secret in `namespace` (default: the mesh's namespace). */
  readonly secret?: { readonly name: string; readonly namespace?: string };
  readonly layout?: CertificateLayout;
  readonly files?: Partial<CertificatePaths>;
  readonly source?: CertificateSource;
  /** How often files are stat'ed in case a change notification was missed, in ms. Default 2000. */
  readonly pollIntervalMs?: number;
  /** Quiet time after a change before the files are read, in ms. Default 100. */
  readonly debounceMs?: number;
}

/** The layout whose certificate file exists in `directory`, else `istio`. */
export function detectLayout(directory: string): CertificateLayout {
  for (const [layout, files] of Object.entries(LAYOUT_FILES) as [CertificateLayout, CertificatePaths][]) {
    if (existsSync(join(directory, files.chain))) return layout;
  }
  return 'istio';
}

/** What a Secret source needs from the mesh: its Kubernetes watcher and namespace. */
export interface SecretAccess {
  readonly watcher: KubeWatcher | undefined;
  readonly namespace: string;
}

/** The source `options` describe; throws {@link SecurityOptionError} when they describe none. */
export function certificateSourceFor(options: CertificateOptions, kube?: SecretAccess, clock?: MeshClock): CertificateSource {
  if (options.source) return options.source;
  if (options.secret) {
    if (!kube?.watcher) {
      throw new SecurityOptionError(
        `certificates.secret (${options.secret.name}) is read through the Kubernetes API: use discovery 'kubernetes' (or 'auto' in a pod)`,
      );
    }
    const ref: SecretReference = { name: options.secret.name, namespace: options.secret.namespace ?? kube.namespace };
    return new KubernetesSecretSource(kube.watcher, ref);
  }
  const poll = { ...(options.pollIntervalMs !== undefined ? { pollIntervalMs: options.pollIntervalMs } : {}), ...(clock ? { clock } : {}) };
  if (options.directory !== undefined) {
    const directory = options.directory;
    const layout = options.layout ?? detectLayout(directory);
    const names = { ...LAYOUT_FILES[layout], ...options.files };
    const at = (name: string) => (isAbsolute(name) ? name : join(directory, name));
    return new FileCertificateSource(`${layout}:${directory}`, { chain: at(names.chain), key: at(names.key), roots: at(names.roots) }, poll);
  }
  const files = options.files ?? {};
  if (files.chain === undefined || files.key === undefined || files.roots === undefined) {
    throw new SecurityOptionError('certificates: give a `directory`, or `files` with all of `chain`, `key` and `roots`, or a `source`');
  }
  return new FileCertificateSource(`files:${files.chain}`, { chain: files.chain, key: files.key, roots: files.roots }, poll);
}

/**
 * Certificates found without configuration: the directory in `$OUTPUT_CERTS` (pilot-agent writes
 * there, possibly after the application started), else the first well-known directory holding its
 * layout's certificate file. Undefined when there is none.
 */
export function discoverCertificates(env: NodeJS.ProcessEnv = process.env): CertificateOptions | undefined {
  const output = env.OUTPUT_CERTS;
  if (output) return { directory: output, layout: 'istio' };
  for (const known of WELL_KNOWN_CERTIFICATE_DIRECTORIES) {
    if (existsSync(join(known.directory, LAYOUT_FILES[known.layout].chain))) return { directory: known.directory, layout: known.layout };
  }
  return undefined;
}
