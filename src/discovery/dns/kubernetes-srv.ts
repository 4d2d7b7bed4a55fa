import { DnsOptionError } from './errors.js';

// A Kubernetes Service port name is a DNS-1123 label (validation.IsDNS1123Label).
const PORT_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * The SRV label of a port name (`http-web` → used as `_http-web._tcp.`), lowercase, or undefined
 * when the name cannot be a Kubernetes Service port name, so no SRV record can exist for it.
 */
export function srvPortName(name: string): string | undefined {
  const lower = name.toLowerCase();
  return PORT_NAME.test(lower) ? lower : undefined;
}

/**
 * True when `name` is exactly a Kubernetes service's name, `<service>.<namespace>.svc.<clusterDomain>`
 * (case-insensitive, trailing dot allowed): the only names under which Kubernetes DNS publishes
 * `_<port>._<proto>` SRV records. Pod names under a service (`pod.svc.ns.svc.<zone>`) have none.
 */
export function isKubernetesServiceName(name: string, clusterDomain: string): boolean {
  return kubernetesServiceParts(name.replace(/\.$/, '').toLowerCase(), clusterDomain) !== undefined;
}

function kubernetesServiceParts(name: string, clusterDomain: string): [string, string] | undefined {
  const suffix = `.svc.${clusterDomain.replace(/^\.+|\.+$/g, '').toLowerCase()}`;
  if (!name.endsWith(suffix)) return undefined;
  const parts = name.slice(0, -suffix.length).split('.');
  if (parts.length !== 2 || !parts.every((p) => LABEL.test(p))) return undefined;
  return parts as [string, string];
}

/**
 * Compiles the mesh's `dns.portNames` option (`host:port` → Kubernetes port name) into a map keyed
 * `<service>.<namespace>.svc.<clusterDomain>:<port>`. A host is written with its namespace:
 * `name.ns`, `name.ns.svc` or the full name. Throws {@link DnsOptionError} naming the entry and
 * what was expected.
 */
export function compilePortNames(option: Readonly<Record<string, string>> | undefined, clusterDomain: string): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  if (option === undefined) return out;
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw new DnsOptionError(`dns.portNames: expected an object mapping "<service>.<namespace>:<port>" to a port name, got ${describe(option)}`);
  }
  const domain = clusterDomain.replace(/^\.+|\.+$/g, '').toLowerCase();
  for (const [key, value] of Object.entries(option)) {
    const where = `dns.portNames[${JSON.stringify(key)}]`;
    const colon = key.lastIndexOf(':');
    const host = (colon > 0 ? key.slice(0, colon) : key).replace(/\.$/, '').toLowerCase();
    const portText = colon > 0 ? key.slice(colon + 1) : '';
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : Number.NaN;
    if (!(port >= 1 && port <= 65_535)) {
      throw new DnsOptionError(`${where}: expected the key as "<service>.<namespace>:<port>" with a port from 1 to 65535`);
    }
    const fqdn = qualify(host, domain);
    if (fqdn === undefined) {
      throw new DnsOptionError(
        `${where}: expected a Kubernetes service written with its namespace ("<service>.<namespace>", "<service>.<namespace>.svc" or "<service>.<namespace>.svc.${domain}"), got "${host}"`,
      );
    }
    const name = typeof value === 'string' ? value : undefined;
    if (name === undefined || !PORT_NAME.test(name)) {
      throw new DnsOptionError(
        `${where}: expected a Kubernetes Service port name (lowercase letters, digits and "-", at most 63 characters, starting and ending with a letter or digit), got ${describe(value)}`,
      );
    }
    out.set(`${fqdn}:${port}`, name);
  }
  return out;
}

/** `name.ns`, `name.ns.svc` or `name.ns.svc.<domain>` as `name.ns.svc.<domain>`; undefined otherwise. */
function qualify(host: string, domain: string): string | undefined {
  for (const candidate of [`${host}.svc.${domain}`, `${host}.${domain}`, host]) {
    if (kubernetesServiceParts(candidate, domain) !== undefined) return candidate;
  }
  return undefined;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : typeof value;
}
