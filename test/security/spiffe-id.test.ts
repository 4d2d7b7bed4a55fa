import { describe, expect, it } from 'vitest';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { InvalidSpiffeIdError } from '../../src/security/errors.js';
import { formatSpiffeId, parseSpiffeId, spiffeIdOf, TrustDomains } from '../../src/security/spiffe-id.js';

describe('SPIFFE IDs', () => {
  it("parses Istio's workload identity into trust domain, namespace and service account", () => {
    expect(parseSpiffeId('spiffe://cluster.local/ns/shop/sa/reviews')).toEqual({
      uri: 'spiffe://cluster.local/ns/shop/sa/reviews',
      trustDomain: 'cluster.local',
      path: '/ns/shop/sa/reviews',
      namespace: 'shop',
      serviceAccount: 'reviews',
    });
    const other = parseSpiffeId('spiffe://example.org/payments/worker');
    expect(other).toMatchObject({ trustDomain: 'example.org', path: '/payments/worker', namespace: undefined, serviceAccount: undefined });
    expect(formatSpiffeId({ trustDomain: 'td', namespace: 'a', serviceAccount: 'b' })).toBe('spiffe://td/ns/a/sa/b');
  });

  it.each([
    ['https://cluster.local/ns/a/sa/b', /scheme must be spiffe/],
    ['spiffe:///ns/a/sa/b', /trust domain is empty/],
    ['spiffe://Cluster.Local/ns/a', /lowercase/],
    ['spiffe://cluster.local:8080/ns/a', /no port/],
    ['spiffe://user@cluster.local/ns/a', /user info/],
    ['spiffe://cluster.local/ns//sa/b', /empty segment/],
    ['spiffe://cluster.local/ns/a/', /empty segment/],
    ['spiffe://cluster.local/ns/../sa/b', /"\." or "\.\."/],
    ['spiffe://cluster.local/ns/a?x=1', /no query or fragment/],
  ])('refuses %s with a coded error saying why', (value, why) => {
    let error: unknown;
    try {
      parseSpiffeId(value);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidSpiffeIdError);
    expect((error as InvalidSpiffeIdError).code).toBe('ERR_MESH_SPIFFE_ID');
    expect((error as Error).message).toMatch(why);
  });

  it('reads the one SPIFFE ID of a certificate and ignores certificates with none or several', () => {
    const ca = DevCa.create({ trustDomain: 'example.org' });
    expect(spiffeIdOf(ca.issue({ namespace: 'n', serviceAccount: 's', uris: ['https://example.org/x'] }).certificate)?.uri).toBe(
      'spiffe://example.org/ns/n/sa/s',
    );
    expect(spiffeIdOf(ca.issue({ uris: ['spiffe://example.org/second'] }).certificate)).toBeUndefined();
    expect(spiffeIdOf(ca.issue({ spiffeId: 'spiffe://example.org/ns/../sa/x' }).certificate)).toBeUndefined();
  });

  it('accepts peers from the trust domain and its aliases only', () => {
    const domains = new TrustDomains('cluster.local', ['old.example']);
    expect(domains.accepts(parseSpiffeId('spiffe://cluster.local/ns/a/sa/b'))).toBe(true);
    expect(domains.accepts(parseSpiffeId('spiffe://old.example/ns/a/sa/b'))).toBe(true);
    expect(domains.accepts(parseSpiffeId('spiffe://evil.example/ns/a/sa/b'))).toBe(false);
    expect(() => new TrustDomains('Bad Domain')).toThrow(InvalidSpiffeIdError);
  });
});
