import { createSocket } from 'node:dgram';
import type { Socket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DnsResolver } from '../../src/discovery/dns/dns-resolver.js';
import { DnsLookupError } from '../../src/discovery/dns/errors.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

describe('DnsResolver against dnsmasq', () => {
  let dns: Dnsmasq;
  let resolver: DnsResolver;

  beforeAll(async () => {
    dns = await Dnsmasq.start(
      {
        hosts: {
          'reviews.shop.svc.cluster.local': ['10.96.0.20', 'fd00:96::20'],
          'ratings.shop.svc.cluster.local': ['10.1.0.11', '10.1.0.12'],
        },
        srv: [{ name: '_http._tcp.ratings.shop.svc.cluster.local', target: 'ratings.shop.svc.cluster.local', port: 9080, weight: 10 }],
      },
      { ttl: 7, localDomains: ['cluster.local'] },
    );
    resolver = new DnsResolver({ servers: [dns.server], timeoutMs: 1000, attempts: 2 });
  });

  afterAll(async () => {
    resolver?.cancel();
    await dns?.close();
  });

  it('uses the servers it is given', () => {
    expect(resolver.servers()).toEqual([dns.server]);
  });

  it('answers A and AAAA with TTLs', async () => {
    expect(await resolver.queryAddresses('reviews.shop.svc.cluster.local', 4)).toEqual({
      status: 'found',
      records: [{ address: '10.96.0.20', family: 4, ttl: 7 }],
    });
    expect(await resolver.queryAddresses('reviews.shop.svc.cluster.local', 6)).toEqual({
      status: 'found',
      records: [{ address: 'fd00:96::20', family: 6, ttl: 7 }],
    });
    const headless = await resolver.queryAddresses('ratings.shop.svc.cluster.local', 4);
    expect(headless.status === 'found' ? headless.records.map((r) => r.address).sort() : headless).toEqual(['10.1.0.11', '10.1.0.12']);
  });

  it('tells NXDOMAIN from NODATA', async () => {
    expect(await resolver.queryAddresses('nope.shop.svc.cluster.local', 4)).toEqual({ status: 'nxdomain' });
    expect(await resolver.queryAddresses('ratings.shop.svc.cluster.local', 6)).toEqual({ status: 'nodata' });
    expect(await resolver.querySrv('_grpc._tcp.ratings.shop.svc.cluster.local')).toEqual({ status: 'nxdomain' });
  });

  it('answers SRV', async () => {
    expect(await resolver.querySrv('_http._tcp.ratings.shop.svc.cluster.local')).toEqual({
      status: 'found',
      records: [{ name: 'ratings.shop.svc.cluster.local', port: 9080, priority: 0, weight: 10 }],
    });
  });

  it('throws DnsLookupError for a refused query', async () => {
    // dnsmasq has no upstream: names outside its local domains are refused.
    const error = await resolver.queryAddresses('example.com', 4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DnsLookupError);
    expect(error).toMatchObject({ code: 'ERR_MESH_DNS_LOOKUP', dnsCode: 'EREFUSED', hostname: 'example.com', rrtype: 'A' });
  });
});

describe('DnsResolver without a server', () => {
  let blackHole: Socket | undefined;
  afterAll(() => blackHole?.close());

  it('reports a server that does not answer as ETIMEOUT', async () => {
    // A bound UDP socket that reads and never replies.
    const socket = createSocket('udp4');
    blackHole = socket;
    socket.on('message', () => undefined);
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
    const resolver = new DnsResolver({ servers: [`127.0.0.1:${socket.address().port}`], timeoutMs: 100, attempts: 1 });
    await expect(resolver.queryAddresses('reviews.shop.svc.cluster.local', 4)).rejects.toMatchObject({ dnsCode: 'ETIMEOUT' });
  });

  it('reports a stopped server as a lookup failure, not as an absent name', async () => {
    const dns = await Dnsmasq.start({ hosts: { 'a.test': ['10.0.0.1'] } });
    const resolver = new DnsResolver({ servers: [dns.server], timeoutMs: 500, attempts: 1 });
    expect((await resolver.queryAddresses('a.test', 4)).status).toBe('found');
    await dns.close();
    const error = await resolver.queryAddresses('a.test', 4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DnsLookupError);
    // Loopback reports the closed port at once (ICMP port unreachable); elsewhere it may time out.
    expect(['ECONNREFUSED', 'ETIMEOUT']).toContain((error as DnsLookupError).dnsCode);
  });
});
