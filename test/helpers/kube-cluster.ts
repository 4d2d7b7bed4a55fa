import { join } from 'node:path';
import type { KubernetesOptions } from '../../src/index.js';
import { CORE_RESOURCES, FakeKubeApi, ISTIO_RESOURCES } from './fake-kube-api.js';
import type { FakeObject } from './fake-kube-api.js';

/**
 * Workloads written to the fake API server as a cluster's controllers would write them: a Service,
 * one EndpointSlice per pod (so a pod's readiness changes one object), and the Pod with its labels.
 */
export class KubeCluster {
  private constructor(readonly api: FakeKubeApi) {}

  static async start(options: { readonly istio?: boolean } = {}): Promise<KubeCluster> {
    return new KubeCluster(
      await FakeKubeApi.start({
        token: 't',
        resources: options.istio === false ? CORE_RESOURCES : [...CORE_RESOURCES, ...ISTIO_RESOURCES],
      }),
    );
  }

  /** `discovery` options reaching the fake through a kubeconfig, with short back-off. */
  async discovery(dir: string, extra: Partial<KubernetesOptions> = {}): Promise<KubernetesOptions> {
    return { kubeconfig: await this.api.writeKubeconfig(join(dir, 'kubeconfig')), backoff: { initialMs: 20, maxMs: 200 }, ...extra };
  }

  service(name: string, port: number, namespace = 'shop'): void {
    this.api.update({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: { selector: { app: name }, ports: [{ name: 'http', port, targetPort: 'http' }] },
    });
  }

  /** Writes pod `name` (labels) and its slice: `ready`, `not-ready` or `terminating`. */
  pod(
    service: string,
    name: string,
    address: string,
    podPort: number,
    state: 'ready' | 'not-ready' | 'terminating' = 'ready',
    labels: Record<string, string> = {},
    namespace = 'shop',
  ): void {
    this.api.batch(() => {
      this.api.update({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { app: service, ...labels } } });
      this.api.update(podSlice(service, name, address, podPort, state, namespace));
    });
  }

  /** Changes a pod's labels only (its slice stays). */
  relabel(service: string, name: string, labels: Record<string, string>, namespace = 'shop'): void {
    this.api.update({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, labels: { app: service, ...labels } } });
  }

  /** The pod is gone: its slice and its Pod object are deleted. */
  remove(service: string, name: string, namespace = 'shop'): void {
    this.api.batch(() => {
      this.api.delete('discovery.k8s.io/v1', 'EndpointSlice', `${service}-${name}`, namespace);
      this.api.delete('v1', 'Pod', name, namespace);
    });
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}

export function podSlice(
  service: string,
  pod: string,
  address: string,
  podPort: number,
  state: 'ready' | 'not-ready' | 'terminating',
  namespace = 'shop',
): FakeObject {
  const conditions =
    state === 'ready'
      ? { ready: true, serving: true, terminating: false }
      : state === 'terminating'
        ? { ready: false, serving: true, terminating: true }
        : { ready: false, serving: false, terminating: false };
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    addressType: 'IPv4',
    metadata: { name: `${service}-${pod}`, namespace, labels: { 'kubernetes.io/service-name': service } },
    ports: [{ name: 'http', port: podPort, protocol: 'TCP' }],
    endpoints: [{ addresses: [address], conditions, targetRef: { kind: 'Pod', name: pod, namespace } }],
  };
}
