import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { DnsEndpointChange, DnsLookupFailure, Mesh, MeshOptions } from '../../src/index.js';
import { countPods, dnsOptions, get, nextEvent } from '../helpers/dns-mesh.js';
import type { DnsmasqOptions, DnsmasqRecords } from '../helpers/dnsmasq.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

// Every test runs its own dnsmasq (records change, servers stop) and its own mesh; the pods are shared.
let pods: Pods;
let port: number;
const servers: Dnsmasq[] = [];
const meshes: Mesh[] = [];

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']);
  port = pods.port;
});
afterEach(async () => {
  await Promise.all(meshes.splice(0).map((m) => m.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
afterAll(async () => {
  await pods.close();
});

async function dnsmasq(records: DnsmasqRecords, options: DnsmasqOptions = { ttl: 1 }): Promise<Dnsmasq> {
  const server = await Dnsmasq.start(records, options);
  servers.push(server);
  return server;
}

async function mesh(yaml: string, server: Dnsmasq, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
  const m = await meshFromYaml(yaml, { namespace: 'shop', random: seededRandom(7), dns: dnsOptions(server), ...options });
  meshes.push(m);
  return m;
}

const REVIEWS = 'reviews.shop.svc.cluster.local';
const keysOf = (c: DnsEndpointChange): string[] => c.endpoints.map((e) => e.address);

describe('Kubernetes services found by DNS', () => {
  it('spreads requests over the pods of a headless service (default LEAST_REQUEST, within ±5 points of a third)', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] } });
    const m = await mesh('', server);
    const counts = await countPods(m, `http://reviews.shop:${port}/`, 3000);
    expect([...counts.keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    for (const n of counts.values()) expect(Math.abs(n / 30 - 100 / 3)).toBeLessThanOrEqual(5);
  }, 60_000);

  it('applies the DestinationRule for the name: ROUND_ROBIN shares exactly', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] } });
    const m = await mesh(
      `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
`,
      server,
    );
    const counts = await countPods(m, `http://reviews.shop.svc.cluster.local:${port}/`, 300);
    expect(Object.fromEntries(counts)).toEqual({ '127.0.0.2': 100, '127.0.0.3': 100, '127.0.0.4': 100 });
    // The pod sees the name it was called by.
    const { reply } = await get(m, `http://reviews.shop:${port}/`);
    expect(reply?.host).toBe(`reviews.shop:${port}`);
  });

  it('moves traffic to the new pods when the records change, failing no request', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2', '127.0.0.3'] } });
    const m = await mesh('', server);
    const url = `http://reviews.shop:${port}/`;
    expect([...(await countPods(m, url, 20)).keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3']);

    const changed = nextEvent(m, 'dnsChange', (c) => c.name === REVIEWS && keysOf(c).join() === '127.0.0.5,127.0.0.6');
    // Requests keep flowing while the change lands.
    let done = false;
    const failures: string[] = [];
    const traffic = (async () => {
      while (!done) {
        const { status, text } = await get(m, url);
        if (status !== 200) failures.push(`${status} ${text}`);
      }
    })();
    await server.setHosts({ [REVIEWS]: ['127.0.0.5', '127.0.0.6'] });
    await changed;
    done = true;
    await traffic;
    expect(failures).toEqual([]);
    // The change event comes after the clusters were updated: from now on only the new pods.
    expect([...(await countPods(m, url, 20)).keys()].sort()).toEqual(['127.0.0.5', '127.0.0.6']);
  });

  it('keeps serving the last answer when the DNS server stops', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] } });
    const m = await mesh('', server);
    const url = `http://reviews.shop:${port}/`;
    expect((await countPods(m, url, 10)).size).toBeGreaterThan(0);
    const failed = nextEvent(m, 'dnsError', (f) => f.name === REVIEWS);
    await server.stop();
    const failure: DnsLookupFailure = await failed;
    expect(['ECONNREFUSED', 'ETIMEOUT']).toContain(failure.error.dnsCode);
    expect(failure.kept.map((e) => e.address)).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
    const counts = await countPods(m, url, 60);
    expect([...counts.keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it('answers 503 naming the host for a name DNS does not know (NXDOMAIN)', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2'] } });
    const m = await mesh('', server);
    const { status, text } = await get(m, `http://nope.shop:${port}/`);
    expect(status).toBe(503);
    expect(text).toContain('no healthy upstream');
    expect(text).toContain('nope.shop.svc.cluster.local');
    expect(text).toContain('NXDOMAIN');
    // Later requests answer the same at once, and other names are unaffected.
    expect((await get(m, `http://nope.shop:${port}/`)).status).toBe(503);
    expect((await get(m, `http://reviews.shop:${port}/`)).status).toBe(200);
  });

  it('answers 503 with the DNS error when the first lookup fails, and recovers when DNS answers again', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.4'] } });
    await server.stop();
    const m = await mesh('', server, { dns: dnsOptions(server, { failureRefreshMs: 200, maxFailureRefreshMs: 400 }) });
    const failed = nextEvent(m, 'dnsError', (f) => f.name === REVIEWS);
    const { status, text } = await get(m, `http://reviews.shop:${port}/`);
    expect(status).toBe(503);
    expect(text).toContain(REVIEWS);
    expect(text).toMatch(/ECONNREFUSED|ETIMEOUT/);
    expect((await failed).kept).toEqual([]);

    const answered = nextEvent(m, 'dnsChange', (c) => c.name === REVIEWS && c.endpoints.length === 1);
    await server.restart();
    await answered;
    expect((await get(m, `http://reviews.shop:${port}/`)).reply?.pod).toBe('127.0.0.4');
  });

  it('fails a request still waiting for its first answer when the mesh closes, instead of hanging', async () => {
    // A server that swallows every query: the lookup would only end at its timeout.
    const blackhole = createSocket('udp4');
    await new Promise<void>((resolve) => blackhole.bind(0, '127.0.0.1', resolve));
    try {
      const server = `127.0.0.1:${(blackhole.address() as AddressInfo).port}`;
      const m = await meshFromYaml('', {
        namespace: 'shop',
        dns: { servers: [server], resolvConfPath: '/nonexistent/resolv.conf', timeoutMs: 60_000, attempts: 1 },
      });
      const received = new Promise((resolve) => blackhole.once('message', resolve));
      const pending = m.request(`http://reviews.shop:${port}/`);
      await received;
      await m.close();
      await expect(pending).rejects.toThrow('the mesh is closed');
    } finally {
      blackhole.close();
    }
  });

  it('leaves a bare name (no namespace) to the system resolver, as before', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2'] } });
    const local = await Pods.start(['127.0.0.1']);
    try {
      const m = await mesh('', server);
      // To the mesh `localhost` could be `localhost.shop.svc.cluster.local`; it must still reach loopback.
      const { status, reply } = await get(m, `http://localhost:${local.port}/`);
      expect(status).toBe(200);
      expect(reply?.pod).toBe('127.0.0.1');
    } finally {
      await local.close();
    }
  });

  it('explains why a subset with labels selects nothing from DNS', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2', '127.0.0.3'] } });
    const m = await mesh(
      `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  subsets: [{ name: v1, labels: { version: v1 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http: [{ route: [{ destination: { host: reviews, subset: v1 } }] }]
`,
      server,
    );
    const { status, text } = await get(m, `http://reviews:${port}/`);
    expect(status).toBe(503);
    expect(text).toContain('subset "v1"');
    expect(text).toContain('DNS, which carries no labels');
  });

  it('with dns: false, connects to resolution: DNS endpoints by name through the system resolver', async () => {
    const server = await dnsmasq({ hosts: { [REVIEWS]: ['127.0.0.2'] } });
    const local = await Pods.start(['127.0.0.1']);
    try {
      const m = await mesh(
        `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: local, namespace: shop }
spec:
  hosts: [local.example.test]
  resolution: DNS
  ports: [{ number: ${local.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: localhost }]
`,
        server,
        { dns: false },
      );
      const dnsEvents: string[] = [];
      m.on('dnsChange', (c) => dnsEvents.push(c.key));
      const { status, reply } = await get(m, `http://local.example.test:${local.port}/`);
      expect(status).toBe(200);
      expect(reply?.pod).toBe('127.0.0.1');
      expect(dnsEvents).toEqual([]);
    } finally {
      await local.close();
    }
  });
});

describe('ServiceEntry with resolution DNS', () => {
  const config = (p: number, resolution = 'DNS') => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.example.test]
  location: MESH_EXTERNAL
  resolution: ${resolution}
  ports: [{ number: ${p}, name: http, protocol: HTTP }]
  endpoints:
  - { address: v1.ratings.example.test, labels: { version: v1 } }
  - { address: v2.ratings.example.test, labels: { version: v2 }, weight: 2 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: shop }
spec:
  host: ratings.example.test
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - { name: v2, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.example.test]
  http:
  - match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: ratings.example.test, subset: v2 } }]
  - route: [{ destination: { host: ratings.example.test, subset: v1 } }]
`;
  const records: DnsmasqRecords = {
    hosts: {
      'v1.ratings.example.test': ['127.0.0.2', '127.0.0.3'],
      'v2.ratings.example.test': ['127.0.0.4'],
    },
  };

  it('resolves each endpoint address and keeps its labels, so subsets select DNS endpoints', async () => {
    const server = await dnsmasq(records);
    const m = await mesh(config(port), server);
    const url = `http://ratings.example.test:${port}/`;
    expect(Object.fromEntries(await countPods(m, url, 40))).toEqual({ '127.0.0.2': 20, '127.0.0.3': 20 });
    expect(Object.fromEntries(await countPods(m, url, 10, { 'end-user': 'jason' }))).toEqual({ '127.0.0.4': 10 });
    expect((await get(m, url)).reply?.host).toBe(`ratings.example.test:${port}`);
  });

  it('follows a record change of one endpoint name', async () => {
    const server = await dnsmasq(records);
    const m = await mesh(config(port), server);
    const url = `http://ratings.example.test:${port}/`;
    expect([...(await countPods(m, url, 10, { 'end-user': 'jason' })).keys()]).toEqual(['127.0.0.4']);
    const changed = nextEvent(m, 'dnsChange', (c) => c.name === 'v2.ratings.example.test' && keysOf(c).join() === '127.0.0.5,127.0.0.6');
    await server.setHosts({ ...records.hosts, 'v2.ratings.example.test': ['127.0.0.5', '127.0.0.6'] });
    await changed;
    expect(Object.fromEntries(await countPods(m, url, 10, { 'end-user': 'jason' }))).toEqual({ '127.0.0.5': 5, '127.0.0.6': 5 });
    // The other subset is untouched.
    expect([...(await countPods(m, url, 10)).keys()].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
  });

  it('DNS_ROUND_ROBIN connects to one address per endpoint name', async () => {
    // A long TTL: no re-resolution can move the address during the test.
    const server = await dnsmasq(records, { ttl: 300 });
    const m = await mesh(config(port, 'DNS_ROUND_ROBIN').replace(/ {2}- \{ address: v2[^\n]*\n/, ''), server);
    const counts = await countPods(m, `http://ratings.example.test:${port}/`, 20);
    expect(counts.size).toBe(1);
    expect(['127.0.0.2', '127.0.0.3']).toContain([...counts.keys()][0]);
  });
});
