import { isIP } from 'node:net';
import { q } from './rule-report.js';

/**
 * The name, address and label rules istiod applies (`pkg/config/labels`, `agent.Validate*`), each
 * returning Istio's message, or undefined when the value passes.
 */

const DNS1123_LABEL = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;
/** A DNS-1123 label, `*`, or a label after a leading `*` or `*-`. */
const WILDCARD_LABEL = /^(?:\*|(?:\*|\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$/;
const QUALIFIED_NAME = '(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]';
const LABEL_KEY = new RegExp(`^((?:[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)(?:\\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*/)?(${QUALIFIED_NAME})$`);
const LABEL_VALUE = new RegExp(`^(?:${QUALIFIED_NAME})?$`);

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

function isWildcardDns1123Label(value: string): boolean {
  return value.length <= 63 && WILDCARD_LABEL.test(value);
}

function dns1123Preconditions(name: string): string | undefined {
  if (name.length > 255) return `domain name ${q(name)} too long (max 255)`;
  if (name.length === 0) return 'empty domain name not allowed';
  return undefined;
}

function dns1123Labels(domain: string): string | undefined {
  const parts = domain.split('.');
  const top = parts[parts.length - 1]!;
  if (/^[+-]?\d+$/.test(top)) return `domain name ${q(domain)} invalid (top level domain ${q(top)} cannot be all-numeric)`;
  for (let i = 0; i < parts.length; i++) {
    const label = parts[i]!;
    // A trailing dot (`istio.io.`) is allowed.
    if (i === parts.length - 1 && label === '') return undefined;
    if (!isDns1123Label(label)) return `domain name ${q(domain)} invalid (label ${q(label)} invalid)`;
  }
  return undefined;
}

/** A fully qualified domain name (agent.ValidateFQDN). */
export function validateFqdn(fqdn: string): string | undefined {
  return dns1123Preconditions(fqdn) ?? dns1123Labels(fqdn);
}

/** A domain name whose first label may be a wildcard (agent.ValidateWildcardDomain). */
export function validateWildcardDomain(domain: string): string | undefined {
  const pre = dns1123Preconditions(domain);
  if (pre) return pre;
  const dot = domain.indexOf('.');
  const first = dot === -1 ? domain : domain.slice(0, dot);
  if (!isWildcardDns1123Label(first)) return `domain name ${q(domain)} invalid (label ${q(first)} invalid)`;
  return dot === -1 ? undefined : dns1123Labels(domain.slice(dot + 1));
}

/** `foo*.com` and `*foo.com` are partial wildcards; `*` and `*.foo.com` are not. */
export function validatePartialWildcard(host: string): string | undefined {
  return host.includes('*') && host.length !== 1 && !host.startsWith('*.') ? `partial wildcard ${q(host)} not allowed` : undefined;
}

/** An IPv4 or IPv6 address (Go's netip.ParseAddr: no leading zeros in IPv4, zones allowed). */
export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

export function validateIpAddress(address: string): string | undefined {
  return isIpAddress(address) ? undefined : `${address} is not a valid IP`;
}

/** An address or a CIDR block (agent.ValidateIPSubnet). */
export function validateIpSubnet(subnet: string): string | undefined {
  if (subnet.split('/').length === 2) return isCidr(subnet) ? undefined : `${subnet} is not a valid CIDR block`;
  return validateIpAddress(subnet);
}

/** Go's netip.ParsePrefix: an address without zone, `/`, a decimal prefix length within the family. */
export function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash === -1) return false;
  const address = value.slice(0, slash);
  const bits = value.slice(slash + 1);
  const family = address.includes('%') ? 0 : isIP(address);
  if (family === 0 || !/^(0|[1-9]\d{0,2})$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

export function validatePort(port: number): string | undefined {
  return port >= 1 && port <= 65535 ? undefined : `port number ${port} must be in the range 1..65535`;
}

export function validatePortName(name: string): string | undefined {
  return isDns1123Label(name) ? undefined : `invalid port name: ${name}`;
}

const PROTOCOLS = new Set(['tcp', 'udp', 'grpc', 'grpc-web', 'http', 'http_proxy', 'http2', 'https', 'tls', 'mongo', 'redis', 'mysql']);

/** A port protocol Istio knows (any case); empty means "detect". */
export function validateProtocol(protocol: string | undefined): string | undefined {
  return protocol === undefined || protocol === '' || PROTOCOLS.has(protocol.toLowerCase()) ? undefined : `unsupported protocol: ${protocol}`;
}

/** Istio's protocol groups (protocol.Instance IsHTTP / IsTLS / IsTCP). */
export function protocolKind(protocol: string | undefined): 'http' | 'tls' | 'tcp' | 'unknown' {
  switch ((protocol ?? '').toLowerCase()) {
    case 'http':
    case 'http2':
    case 'http_proxy':
    case 'grpc':
    case 'grpc-web':
      return 'http';
    case 'https':
    case 'tls':
      return 'tls';
    case 'tcp':
    case 'mongo':
    case 'redis':
    case 'mysql':
      return 'tcp';
    default:
      return 'unknown';
  }
}

/** Kubernetes label keys and values (labels.Instance.Validate): one message per bad key or value. */
export function validateLabels(labels: Readonly<Record<string, string>> | undefined): string[] {
  const problems: string[] = [];
  for (const [key, value] of Object.entries(labels ?? {})) {
    const match = LABEL_KEY.exec(key);
    if (!match) problems.push(`invalid tag key: ${q(key)}`);
    else if (match[1] && match[1].length - 1 > 253) problems.push(`invalid tag key: ${q(key)} (DNS prefix is too long)`);
    else if (match[2]!.length > 63) problems.push(`invalid tag key: ${q(key)} (name is too long)`);
    if (!LABEL_VALUE.test(value)) problems.push(`invalid tag value: ${q(value)}`);
  }
  return problems;
}

/** host.Name.Matches: the two names overlap (either may be a wildcard). */
export function hostsOverlap(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw && bw) return a.length < b.length ? b.slice(1).endsWith(a.slice(1)) : a.slice(1).endsWith(b.slice(1));
  if (aw) return b.endsWith(a.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}

/** host.Name.SubsetOf: every name `a` matches is matched by `b`. */
export function hostSubsetOf(a: string, b: string): boolean {
  const aw = a.startsWith('*');
  const bw = b.startsWith('*');
  if (aw) return bw && a.length >= b.length && a.slice(1).endsWith(b.slice(1));
  if (bw) return a.endsWith(b.slice(1));
  return a === b;
}
