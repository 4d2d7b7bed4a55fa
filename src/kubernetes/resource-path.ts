import type { KubeResourceType, KubeWatchOptions } from './collection.js';

/** `/api/v1/namespaces/shop/pods`, `/apis/networking.istio.io/v1/virtualservices`. */
export function resourcePath(type: KubeResourceType, namespace: string | undefined): string {
  const base = type.group === '' ? `/api/${type.version}` : `/apis/${type.group}/${type.version}`;
  const scope = type.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${scope}/${type.plural}`;
}

export function apiVersionOf(type: KubeResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

/** `discovery.k8s.io/v1 EndpointSlice in shop`, `... in every namespace`, plus selectors. */
export function describeCollection(type: KubeResourceType, options: KubeWatchOptions): string {
  const where = !type.namespaced ? '' : options.namespace !== undefined ? ` in ${options.namespace}` : ' in every namespace';
  const selectors = [options.labelSelector && `labels ${options.labelSelector}`, options.fieldSelector && `fields ${options.fieldSelector}`]
    .filter(Boolean)
    .join(', ');
  return `${apiVersionOf(type)} ${type.kind}${where}${selectors ? ` (${selectors})` : ''}`;
}

export const LIST_ACCEPT = 'application/json';
export const METADATA_LIST_ACCEPT = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json';
export const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json';
