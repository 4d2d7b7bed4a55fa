import { describe, expect, it } from 'vitest';
import { IpBlocks } from '../../src/security/authz/ip-block.js';

describe('ipBlocks matching', () => {
  it.each([
    ['10.1.0.0/16', '10.1.255.3', true],
    ['10.1.0.0/16', '10.2.0.1', false],
    ['10.1.2.3', '10.1.2.3', true],
    ['10.1.2.3', '10.1.2.4', false],
    ['0.0.0.0/0', '192.168.1.1', true],
    ['127.0.0.1/32', '127.0.0.1', true],
    ['2001:db8::/32', '2001:db8:abcd::1', true],
    ['2001:db8::/32', '2001:db9::1', false],
    ['::1', '::1', true],
    ['fe80::/10', 'febf::1', true],
    ['fe80::/10', 'fec0::1', false],
    ['::ffff:10.0.0.0/104', '::ffff:10.9.9.9', true],
    ['10.0.0.0/8', '::1', false],
    ['2001:db8::/32', '10.0.0.1', false],
    ['10.0.0.0/8', 'not-an-ip', false],
  ])('%s contains %s: %s', (block, address, expected) => {
    expect(new IpBlocks([block]).has(address)).toBe(expected);
  });
});
