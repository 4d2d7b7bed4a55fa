import { describe, expect, it } from 'vitest';
import { kubernetesSearchDomains } from '../../src/discovery/dns/resolv-conf.js';
import { searchNames } from '../../src/discovery/dns/search-names.js';

const POD_SEARCH = kubernetesSearchDomains('shop');

describe('searchNames', () => {
  it('tries the search list first for a name with fewer dots than ndots, then the name itself', () => {
    expect(searchNames('reviews', POD_SEARCH, 5)).toEqual(['reviews.shop.svc.cluster.local', 'reviews.svc.cluster.local', 'reviews.cluster.local', 'reviews']);
    expect(searchNames('reviews.bookinfo', POD_SEARCH, 5)).toEqual([
      'reviews.bookinfo.shop.svc.cluster.local',
      'reviews.bookinfo.svc.cluster.local',
      'reviews.bookinfo.cluster.local',
      'reviews.bookinfo',
    ]);
    expect(searchNames('api.example.com', POD_SEARCH, 5)[0]).toBe('api.example.com.shop.svc.cluster.local');
  });

  it('tries a name with at least ndots dots as written first', () => {
    expect(searchNames('reviews.bookinfo', POD_SEARCH, 1)).toEqual([
      'reviews.bookinfo',
      'reviews.bookinfo.shop.svc.cluster.local',
      'reviews.bookinfo.svc.cluster.local',
      'reviews.bookinfo.cluster.local',
    ]);
    expect(searchNames('reviews.shop.svc.cluster.local', POD_SEARCH, 4)[0]).toBe('reviews.shop.svc.cluster.local');
    expect(searchNames('reviews', POD_SEARCH, 0)[0]).toBe('reviews');
  });

  it('treats a trailing dot as absolute', () => {
    expect(searchNames('reviews.shop.svc.cluster.local.', POD_SEARCH, 5)).toEqual(['reviews.shop.svc.cluster.local']);
    expect(searchNames('Example.COM.', [], 1)).toEqual(['example.com']);
  });

  it('lowercases, skips empty domains and duplicates', () => {
    expect(searchNames('Reviews', ['Shop.svc.cluster.local.', '', '.', 'shop.svc.cluster.local'], 5)).toEqual(['reviews.shop.svc.cluster.local', 'reviews']);
    expect(searchNames('reviews', [], 5)).toEqual(['reviews']);
  });

  it('has no candidates for IP literals and empty names', () => {
    expect(searchNames('10.0.0.1', POD_SEARCH, 5)).toEqual([]);
    expect(searchNames('fd00::1', POD_SEARCH, 5)).toEqual([]);
    expect(searchNames('[fd00::1]', POD_SEARCH, 5)).toEqual([]);
    expect(searchNames('', POD_SEARCH, 5)).toEqual([]);
    expect(searchNames('.', POD_SEARCH, 5)).toEqual([]);
  });
});
