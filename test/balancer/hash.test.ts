import { describe, expect, it } from 'vitest';
import { hashKey, xxHash32Bytes } from '../../src/balancer/hash.js';

describe('hashKey (xxHash32)', () => {
  it('matches the reference xxHash32 vectors, seed 0', () => {
    expect(hashKey('')).toBe(0x02cc5d05);
    expect(hashKey('a')).toBe(0x550d7456);
    expect(hashKey('abc')).toBe(0x32d153ff);
    // >= 16 bytes exercises the four-lane stripe loop.
    expect(hashKey('Nobody inspects the spammish repetition')).toBe(0xe2293b2f);
  });

  it('hashes the UTF-8 bytes of the text', () => {
    const bytes = new TextEncoder().encode('zürich-é-東京');
    expect(hashKey('zürich-é-東京')).toBe(xxHash32Bytes(bytes, bytes.length));
  });

  it('depends on the seed and returns unsigned 32-bit integers', () => {
    const a = hashKey('10.0.0.1:8080', 0);
    const b = hashKey('10.0.0.1:8080', 1);
    expect(a).not.toBe(b);
    for (const h of [a, b]) {
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });

  it('gives the same result after hashing longer text (scratch buffer reuse)', () => {
    const before = hashKey('user-42');
    hashKey('x'.repeat(5000));
    expect(hashKey('user-42')).toBe(before);
  });
});
