/** The official client, loaded only when the Kubernetes API is used (it is an optional peer). */
export type KubeClientModule = typeof import('@kubernetes/client-node');

let loading: Promise<KubeClientModule> | undefined;

export function loadKubeClient(): Promise<KubeClientModule> {
  loading ??= import('@kubernetes/client-node').catch((cause: unknown) => {
    loading = undefined;
    throw new Error("install @kubernetes/client-node to use discovery: 'kubernetes'", { cause });
  });
  return loading;
}
