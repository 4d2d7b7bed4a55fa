import { MeshError } from '../errors.js';

/**
 * `discovery: 'kubernetes'` (or `'auto'` in a pod) needs the optional peer
 * `@kubernetes/client-node`, and it is not installed. `createMesh` rejects with this.
 */
export class KubernetesClientMissingError extends MeshError {
  readonly code = 'ERR_MESH_KUBERNETES_CLIENT_MISSING';
  constructor(options?: { cause?: unknown }) {
    super("install @kubernetes/client-node to use discovery: 'kubernetes'", options);
  }
}

/**
 * The Kubernetes API cannot be located or authenticated to as configured: not in a pod and no
 * kubeconfig, a kubeconfig that cannot be read, a `context` it does not have, no current cluster.
 * `createMesh` rejects with this; nothing was started.
 */
export class KubernetesConfigError extends MeshError {
  readonly code = 'ERR_MESH_KUBERNETES_CONFIG';
}

/**
 * A call to the Kubernetes API failed: `status` is the HTTP status, absent when the server could
 * not be reached or answered something unreadable. Reported, not thrown at callers: in
 * `mesh.kubernetesStatus()` (a collection's `status.error`, `discoveryError`) and the
 * `kubernetesStatus` event, while the last known objects keep serving and the watch retries.
 */
export class KubernetesApiError extends MeshError {
  readonly code = 'ERR_MESH_KUBERNETES_API';
  readonly status: number | undefined;
  constructor(message: string, status?: number, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/** The `discovery` option of `createMesh` is none of the accepted values. */
export class DiscoveryOptionError extends MeshError {
  readonly code = 'ERR_MESH_DISCOVERY_OPTION';
}
