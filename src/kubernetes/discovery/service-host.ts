/** A Kubernetes service a host names: `name.ns.svc.<domain>`, or a headless service's pod `host.name.ns.svc.<domain>`. */
export interface KubeServiceRef {
  readonly namespace: string;
  readonly name: string;
  /** The endpoint hostname a headless service's per-pod name selects (`web-0` of a StatefulSet). */
  readonly hostname: string | undefined;
  /** `namespace/name`, the Service's key in its collection. */
  readonly key: string;
}

/** The service behind a fully qualified Kubernetes service host, or undefined for other hosts. */
export function parseServiceHost(host: string, clusterDomain: string): KubeServiceRef | undefined {
  const suffix = `.svc.${clusterDomain}`;
  if (!host.endsWith(suffix)) return undefined;
  const parts = host.slice(0, host.length - suffix.length).split('.');
  if (parts.some((p) => p === '')) return undefined;
  if (parts.length === 2) return ref(parts[1]!, parts[0]!, undefined);
  if (parts.length === 3) return ref(parts[2]!, parts[1]!, parts[0]!);
  return undefined;
}

function ref(namespace: string, name: string, hostname: string | undefined): KubeServiceRef {
  return { namespace, name, hostname, key: `${namespace}/${name}` };
}
