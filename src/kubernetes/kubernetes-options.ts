import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiscoveryOptionError } from './errors.js';

/** How the mesh reaches the Kubernetes API and what it watches there. */
export interface KubernetesOptions {
  /**
   * A kubeconfig file. Default: in a pod, the service account; elsewhere `$KUBECONFIG`, else
   * `~/.kube/config` (what `kubectl` uses).
   */
  readonly kubeconfig?: string;
  /** The kubeconfig context to use. Default: its `current-context`. */
  readonly context?: string;
  /**
   * The service account directory (token, `ca.crt`, `namespace`) used inside a pod. Default
   * `/var/run/secrets/kubernetes.io/serviceaccount`. The token is read again for every list and
   * watch, so a rotated (projected) token is used as soon as kubelet writes it.
   */
  readonly serviceAccountDir?: string;
  /**
   * The API server inside a pod. Default `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
   */
  readonly server?: string;
  /**
   * Namespaces whose Istio resources are read besides the process's own and the root namespace
   * (`MeshOptions.rootNamespace`, `istio-system` by default).
   */
  readonly namespaces?: readonly string[];
  /** Read Istio resources from the API. Default `true`. */
  readonly istioConfig?: boolean;
  /**
   * Take the endpoints of Kubernetes services from the API (EndpointSlices, Services, Pod labels,
   * Nodes), before DNS. `false`: DNS finds them, as without the API (a laptop that reads the
   * cluster's configuration but cannot reach pod IPs). Default `true`.
   */
  readonly endpoints?: boolean;
  /**
   * How long the first requests to services of a namespace wait for its EndpointSlices, Services
   * and Pods to be listed (the caller's namespace opens with the mesh, others on first use);
   * after it they are answered from what is known (503 naming the cause when nothing is).
   * Default 10 000 ms.
   */
  readonly warmupTimeoutMs?: number;
  /** Back-off between watch restarts after an error: first delay and cap, in ms. Default 500 and 30 000. */
  readonly backoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Objects asked per list page (`limit`). Default 500, as client-go. */
  readonly pageSize?: number;
}

/**
 * `'embedded'`: files, ServiceEntry and DNS only. `'kubernetes'`: the API too (see
 * {@link KubernetesOptions}). `'auto'`: the API when running in a pod, else embedded.
 */
export type DiscoveryMode = 'auto' | 'kubernetes' | 'embedded';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** True when this process runs in a pod whose service account token is readable. */
export function runningInPod(serviceAccountDir = SERVICE_ACCOUNT_DIR): boolean {
  if (!process.env.KUBERNETES_SERVICE_HOST) return false;
  try {
    readFileSync(join(serviceAccountDir, 'token'));
    return true;
  } catch {
    return false;
  }
}

/** The Kubernetes options to use, or undefined for the embedded default. */
export function kubernetesOptionsFor(discovery: DiscoveryMode | KubernetesOptions | undefined): KubernetesOptions | undefined {
  if (discovery === undefined || discovery === 'embedded') return undefined;
  if (discovery === 'kubernetes') return {};
  if (discovery === 'auto') return runningInPod() ? {} : undefined;
  if (typeof discovery !== 'object' || discovery === null) {
    throw new DiscoveryOptionError(
      `createMesh: discovery must be 'auto', 'kubernetes', 'embedded' or a KubernetesOptions object, found ${JSON.stringify(discovery)}`,
    );
  }
  return discovery;
}
