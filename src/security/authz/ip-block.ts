import { BlockList, isIP } from 'node:net';

/** A set of addresses and CIDR ranges (`ipBlocks`, `source.ip` values), checked without parsing per request. */
export class IpBlocks {
  private readonly list = new BlockList();

  constructor(values: readonly string[]) {
    for (const value of values) {
      const slash = value.indexOf('/');
      const address = slash >= 0 ? value.slice(0, slash) : value;
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      const bits = slash >= 0 ? Number(value.slice(slash + 1)) : family === 'ipv6' ? 128 : 32;
      this.list.addSubnet(address, bits, family);
    }
  }

  has(address: string): boolean {
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}
