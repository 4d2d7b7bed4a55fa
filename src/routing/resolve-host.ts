/** What host resolution reads of a snapshot (the snapshot itself is built from routing's tables). */
export interface HostScope {
  readonly namespace: string;
  readonly clusterDomain: string;
  readonly namespaces: ReadonlySet<string>;
  routeTable(host: string): unknown;
  service(host: string): unknown;
}

/**
 * Maps the host a caller wrote to the service it means, the way Kubernetes DNS search paths do for
 * a pod in the caller's namespace: `reviews` → `reviews.<ns>.svc.<domain>`, `reviews.ns` →
 * `reviews.ns.svc.<domain>`, `reviews.ns.svc` → `reviews.ns.svc.<domain>`. A candidate the
 * configuration knows (route or service) wins; otherwise the Kubernetes form when the name has that
 * shape (`name.ns` only when `ns` is a namespace the configuration knows), else the host as
 * written (which then passes through untouched).
 */
export function resolveServiceHost(rawHost: string, snapshot: HostScope): string {
  const host = rawHost.toLowerCase().replace(/\.$/, '');
  const domain = snapshot.clusterDomain;
  if (host.endsWith(`.${domain}`)) return host;
  const dots = countDots(host);
  const candidates =
    dots === 0
      ? [`${host}.${snapshot.namespace}.svc.${domain}`, host]
      : dots === 1
        ? [`${host}.svc.${domain}`, host]
        : host.endsWith('.svc') && dots === 2
          ? [`${host}.${domain}`, host]
          : [host];
  for (const candidate of candidates) {
    if (snapshot.routeTable(candidate) || snapshot.service(candidate)) return candidate;
  }
  // Unknown to configuration: a short name is still a Kubernetes service (found later by DNS), and
  // so is `name.ns` when `ns` is a namespace the mesh knows of; `example.com` stays as written.
  if (dots === 0 || (host.endsWith('.svc') && dots === 2)) return candidates[0]!;
  if (dots === 1 && snapshot.namespaces.has(host.slice(host.indexOf('.') + 1))) return candidates[0]!;
  return host;
}

function countDots(host: string): number {
  let n = 0;
  for (let i = 0; i < host.length; i++) if (host.charCodeAt(i) === 46) n++;
  return n;
}
