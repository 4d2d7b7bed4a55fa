import { readFileSync } from 'node:fs';

/**
 * The parts of resolv.conf(5) that name resolution depends on. Node's resolver reads only the
 * servers from /etc/resolv.conf and ignores `search` and `ndots`, so the mesh applies them itself.
 */
export interface ResolvConf {
  /** `host` or `host:port` (IPv6 as `[addr]:port`), in the order they are tried. */
  readonly nameservers: readonly string[];
  /** Search domains, without leading or trailing dots, in the order they are tried. */
  readonly search: readonly string[];
  /** A name with at least this many dots is tried as written before the search list. */
  readonly ndots: number;
  /** Time to wait for one server's answer before retrying, in milliseconds. */
  readonly timeoutMs: number;
  /** How many rounds over the servers before giving up. */
  readonly attempts: number;
}

/** The resolver overrides a mesh may set; unset fields keep what resolv.conf says. */
export interface ResolvConfOverrides {
  readonly nameservers?: readonly string[];
  readonly search?: readonly string[];
  readonly ndots?: number;
  readonly timeoutMs?: number;
  readonly attempts?: number;
}

/** Path of the system resolver configuration. */
export const RESOLV_CONF_PATH = '/etc/resolv.conf';

// glibc's limits (resolv.h): MAXNS servers, RES_MAXNDOTS, RES_MAXRETRANS seconds, RES_MAXRETRY.
const MAX_NAMESERVERS = 3;
const MAX_NDOTS = 15;
const MAX_TIMEOUT_S = 30;
const MAX_ATTEMPTS = 5;

/**
 * What glibc uses when resolv.conf is missing or silent: the local server, no search list (glibc
 * would derive one from the host name's domain; pods always have an explicit `search` line),
 * `ndots:1`, `timeout:5`, `attempts:2`.
 */
export const RESOLV_CONF_DEFAULTS: ResolvConf = Object.freeze({
  nameservers: Object.freeze(['127.0.0.1']),
  search: Object.freeze([]),
  ndots: 1,
  timeoutMs: 5000,
  attempts: 2,
});

/**
 * Parses resolv.conf text as glibc does: `nameserver` lines accumulate (first three kept), the
 * last `search` or `domain` line wins, `options` values are clamped to glibc's limits, and
 * anything else (comments, `sortlist`, unknown options) is ignored.
 */
export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: readonly string[] = RESOLV_CONF_DEFAULTS.search;
  let { ndots, timeoutMs, attempts } = RESOLV_CONF_DEFAULTS;
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/[#;].*$/, '').trim();
    if (line === '') continue;
    const [keyword = '', ...args] = line.split(/\s+/);
    switch (keyword) {
      case 'nameserver':
        if (args[0] !== undefined && nameservers.length < MAX_NAMESERVERS) nameservers.push(args[0]);
        break;
      case 'domain':
        search = args[0] !== undefined ? cleanDomains([args[0]]) : [];
        break;
      case 'search':
        search = cleanDomains(args);
        break;
      case 'options':
        for (const option of args) {
          const [name, value] = option.split(':');
          const n = value === undefined ? Number.NaN : Number.parseInt(value, 10);
          if (!Number.isFinite(n) || n < 0) continue;
          if (name === 'ndots') ndots = Math.min(n, MAX_NDOTS);
          else if (name === 'timeout') timeoutMs = Math.max(1, Math.min(n, MAX_TIMEOUT_S)) * 1000;
          else if (name === 'attempts') attempts = Math.max(1, Math.min(n, MAX_ATTEMPTS));
        }
        break;
      default:
        break;
    }
  }
  return {
    nameservers: nameservers.length > 0 ? nameservers : RESOLV_CONF_DEFAULTS.nameservers,
    search,
    ndots,
    timeoutMs,
    attempts,
  };
}

/** Reads and parses a resolv.conf file; a missing or unreadable file gives glibc's defaults. */
export function readResolvConf(path: string = RESOLV_CONF_PATH): ResolvConf {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return RESOLV_CONF_DEFAULTS;
  }
  return parseResolvConf(text);
}

/** `base` with each override that is set put in its place. */
export function applyResolvConfOverrides(base: ResolvConf, overrides: ResolvConfOverrides): ResolvConf {
  return {
    nameservers: overrides.nameservers && overrides.nameservers.length > 0 ? [...overrides.nameservers] : base.nameservers,
    search: overrides.search ? cleanDomains(overrides.search) : base.search,
    ndots: overrides.ndots ?? base.ndots,
    timeoutMs: overrides.timeoutMs ?? base.timeoutMs,
    attempts: overrides.attempts ?? base.attempts,
  };
}

/**
 * The search list kubelet writes into a pod's resolv.conf (`<ns>.svc.<domain> svc.<domain>
 * <domain>`, with `ndots:5`), for running outside a pod as if inside one.
 */
export function kubernetesSearchDomains(namespace: string, clusterDomain = 'cluster.local'): string[] {
  const domain = trimDots(clusterDomain);
  return [`${namespace}.svc.${domain}`, `svc.${domain}`, domain];
}

function cleanDomains(domains: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of domains) {
    const domain = trimDots(d).toLowerCase();
    if (domain !== '' && !out.includes(domain)) out.push(domain);
  }
  return out;
}

function trimDots(name: string): string {
  return name.replace(/^\.+|\.+$/g, '');
}
