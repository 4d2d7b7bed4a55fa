import type { KubeResourceType } from './collection.js';
import type { KubeAccess } from './kube-access.js';
import { KubernetesApiError } from './errors.js';

/** A kind we would like to watch: its group, plural and kind; the version is discovered. */
export interface WantedKind {
  readonly group: string;
  readonly plural: string;
  readonly kind: string;
}

export interface DiscoveredKinds {
  /** Each served kind at the version to watch. */
  readonly served: readonly KubeResourceType[];
  /** What is not served, for status: `networking.istio.io (group not served)`, `... EnvoyFilter`. */
  readonly unserved: readonly string[];
}

/**
 * Finds the version to watch for each kind: the group's preferred version when it serves the kind,
 * else the first other version that does. The API server converts stored objects to any served
 * version, so one version sees every object whatever version it was written in.
 */
export async function discoverKinds(access: KubeAccess, wanted: readonly WantedKind[], signal?: AbortSignal): Promise<DiscoveredKinds> {
  const served: KubeResourceType[] = [];
  const unserved: string[] = [];
  const groups = [...new Set(wanted.map((w) => w.group))];
  for (const group of groups) {
    const kinds = wanted.filter((w) => w.group === group);
    const info = (await getOrNotFound(access, `/apis/${group}`, signal)) as ApiGroup | undefined;
    if (!info?.versions?.length) {
      unserved.push(`${group} (group not served: ${kinds.map((k) => k.kind).join(', ')})`);
      continue;
    }
    const preferred = info.preferredVersion?.version;
    const versions = [...new Set([preferred, ...info.versions.map((v) => v.version)].filter((v): v is string => typeof v === 'string'))];
    const found = new Map<string, KubeResourceType>();
    for (const version of versions) {
      if (found.size === kinds.length) break;
      const list = (await getOrNotFound(access, `/apis/${group}/${version}`, signal)) as ApiResourceList | undefined;
      for (const resource of list?.resources ?? []) {
        const kind = kinds.find((k) => k.plural === resource.name);
        if (kind && !found.has(kind.plural)) {
          found.set(kind.plural, { group, version, plural: kind.plural, kind: kind.kind, namespaced: resource.namespaced !== false });
        }
      }
    }
    for (const kind of kinds) {
      const type = found.get(kind.plural);
      if (type) served.push(type);
      else unserved.push(`${group} ${kind.kind} (not served)`);
    }
  }
  return { served, unserved };
}

async function getOrNotFound(access: KubeAccess, path: string, signal?: AbortSignal): Promise<unknown> {
  try {
    return await access.getJson(path, signal);
  } catch (error) {
    if (error instanceof KubernetesApiError && error.status === 404) return undefined;
    throw error;
  }
}

interface ApiGroup {
  readonly versions?: readonly { readonly version: string }[];
  readonly preferredVersion?: { readonly version: string };
}

interface ApiResourceList {
  readonly resources?: readonly { readonly name: string; readonly namespaced?: boolean }[];
}
