/** The official client, loaded only when the Kubernetes API is used (it is an optional peer). */
import type * as KubeClient from '@kubernetes/client-node';
import { KubernetesClientMissingError } from './errors.js';

export type KubeClientModule = typeof KubeClient;

let loading: Promise<KubeClientModule> | undefined;

export function loadKubeClient(): Promise<KubeClientModule> {
  loading ??= import('@kubernetes/client-node').catch((cause: unknown) => {
    loading = undefined;
    throw new KubernetesClientMissingError({ cause });
  });
  return loading;
}
