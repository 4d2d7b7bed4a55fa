import { isIPv4, isIPv6 } from 'node:net';

/** An address as numbers: IPv4 as one 32-bit value, IPv6 as eight 16-bit groups. */
type Parsed = { readonly v4: number } | { readonly v6: readonly number[] };

function parseV4(address: string): number {
  const parts = address.split('.');
  return (((Number(parts[0]) << 24) >>> 0) + (Number(parts[1]) << 16) + (Number(parts[2]) << 8) + Number(parts[3])) >>> 0;
}

function parseV6(address: string): number[] {
  let text = address;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  let tail: number[] = [];
  // An embedded IPv4 tail (::ffff:10.0.0.1) is two groups.
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    const v4 = parseV4(text.slice(lastColon + 1));
    tail = [v4 >>> 16, v4 & 0xffff];
    text = `${text.slice(0, lastColon + 1)}0`;
    text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string): number[] =>
    s === ''
      ? []
      : s
          .split(':')
          .filter((g) => g !== '')
          .map((g) => parseInt(g, 16));
  const left = groups(head);
  const right = [...groups(rest ?? ''), ...tail];
  if (rest === undefined) return [...left, ...right].slice(0, 8);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function parse(address: string): Parsed | undefined {
  if (isIPv4(address)) return { v4: parseV4(address) };
  if (isIPv6(address)) return { v6: parseV6(address) };
  return undefined;
}

interface Range4 {
  readonly net: number;
  readonly mask: number;
}
interface Range6 {
  readonly groups: readonly number[];
  readonly bits: number;
}

/** The last address parsed: every ipBlocks condition of one request asks about the same one. */
let lastText = '';
let lastParsed: Parsed | undefined;

function parsedOf(address: string): Parsed | undefined {
  if (address !== lastText) {
    lastText = address;
    lastParsed = parse(address);
  }
  return lastParsed;
}

/**
 * A set of addresses and CIDR ranges (`ipBlocks`, `source.ip` values), matched in JavaScript:
 * parsed once when compiled; per request, one parse of the request's address (shared by every
 * condition that asks) and integer compares.
 */
export class IpBlocks {
  private readonly v4: Range4[] = [];
  private readonly v6: Range6[] = [];

  constructor(values: readonly string[]) {
    for (const value of values) {
      const slash = value.indexOf('/');
      const address = slash >= 0 ? value.slice(0, slash) : value;
      const parsed = parse(address);
      if (!parsed) continue;
      if ('v4' in parsed) {
        const bits = slash >= 0 ? Number(value.slice(slash + 1)) : 32;
        const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
        this.v4.push({ net: (parsed.v4 & mask) >>> 0, mask });
      } else {
        this.v6.push({ groups: parsed.v6, bits: slash >= 0 ? Number(value.slice(slash + 1)) : 128 });
      }
    }
  }

  has(address: string): boolean {
    const parsed = parsedOf(address);
    if (!parsed) return false;
    if ('v4' in parsed) {
      for (const r of this.v4) if ((parsed.v4 & r.mask) >>> 0 === r.net) return true;
      return false;
    }
    for (const r of this.v6) if (inRange6(parsed.v6, r)) return true;
    return false;
  }
}

function inRange6(address: readonly number[], range: Range6): boolean {
  let bits = range.bits;
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const take = Math.min(16, bits);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((address[i] ?? 0) & mask) !== ((range.groups[i] ?? 0) & mask)) return false;
  }
  return true;
}
