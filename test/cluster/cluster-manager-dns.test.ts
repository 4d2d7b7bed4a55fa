import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom, systemClock } from '../../src/clock.js';
import { Cluster } from '../../src/cluster/cluster.js';
import { ClusterManager } from '../../src/cluster/cluster-manager.js';
import type { EndpointPool, PoolFactory } from '../../src/transport/pool-factory.js';
import { isKubernetesServiceHost } from '../../src/cluster/endpoint-plan.js';
import { compileLoadBalancing } from '../../src/config/compile/load-balancing.js';
import { ConfigStore } from '../../src/config/config-store.js';
import type { Snapshot } from '../../src/config/snapshot.js';
import { InlineSource } from '../../src/config/sources/index.js';
import { DnsEndpointSource, kubernetesSearchDomains } from '../../src/discovery/dns/index.js';
import type { Endpoint } from '../../src/discovery/endpoint.js';
import { UNKNOWN_LOCALITY } from '../../src/discovery/endpoint.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

async function snapshotOf(yaml: string): Promise<Snapshot> {
  const store = new ConfigStore([new InlineSource(docs(yaml))], {
    namespace: 'shop',
    rootNamespace: 'istio-system',
    clusterDomain: 'cluster.local',
    workloadLabels: {},
  });
  try {
    return await store.start();
  } finally {
    await store.close();
  }
}

const serviceEntry = (resolution: string, labels = 'version: v1') => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: regional, namespace: shop }
spec:
  hosts: [foo.example.test]
  resolution: ${resolution}
  ports: [{ number: 80, name: http, protocol: HTTP }]
  endpoints:
  - { address: us.example.test, ports: { http: 8080 }, labels: { ${labels} }, locality: us-east1/a, weight: 3 }
  - { address: uk.example.test, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: regional, namespace: shop }
spec:
  host: foo.example.test
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
`;

/** Endpoints the cluster would balance over, as `address:port weight labels`. */
function describeHosts(cluster: Cluster | undefined): string[] {
  const hosts = (cluster as unknown as { hosts: { endpoint: Endpoint }[] } | undefined)?.hosts ?? [];
  return hosts.map((h) => `${h.endpoint.key} w${h.endpoint.weight} ${Object.values(h.endpoint.labels).join(',')}`).sort();
}

describe('ClusterManager with DNS discovery', () => {
  let server: Dnsmasq;
  let dns: DnsEndpointSource;
  let manager: ClusterManager;

  beforeAll(async () => {
    server = await Dnsmasq.start(
      {
        hosts: {
          'us.example.test': ['192.0.2.21'],
          'uk.example.test': ['192.0.2.31', '192.0.2.32'],
          'reviews.shop.svc.cluster.local': ['10.1.0.11', '10.1.0.12'],
        },
      },
      { ttl: 60 },
    );
  });
  afterAll(async () => {
    await server.close();
  });
  afterEach(async () => {
    await manager.close();
    dns.close();
  });

  function start(): void {
    dns = new DnsEndpointSource({
      resolvConfPath: '/nonexistent/resolv.conf',
      nameservers: [server.server],
      search: kubernetesSearchDomains('shop'),
      ndots: 5,
      timeoutMs: 500,
      attempts: 1,
    });
    manager = new ClusterManager({
      clock: systemClock,
      random: seededRandom(1),
      caller: { locality: UNKNOWN_LOCALITY, labels: {} },
      dns,
    });
  }

  async function ready(host: string, subset: string | undefined, port: number): Promise<Cluster | undefined> {
    const cluster = manager.get(host, subset, port);
    if (cluster?.warming) await cluster.warming;
    expect(cluster?.warming).toBeUndefined();
    return cluster;
  }

  it('watches the names of a DNS ServiceEntry on first use, shapes their answers, and unwatches when the entry goes', async () => {
    start();
    manager.setSnapshot(await snapshotOf(serviceEntry('DNS')));
    expect(dns.keys()).toEqual([]);
    const all = await ready('foo.example.test', undefined, 80);
    expect(describeHosts(all)).toEqual(['192.0.2.21:8080 w3 v1', '192.0.2.31:80 w1 v2', '192.0.2.32:80 w1 v2']);
    expect(describeHosts(await ready('foo.example.test', 'v2', 80))).toEqual(['192.0.2.31:80 w1 v2', '192.0.2.32:80 w1 v2']);
    // Both clusters share the two watches.
    expect(dns.keys().sort()).toEqual(['uk.example.test:80', 'us.example.test:8080']);

    manager.setSnapshot(await snapshotOf('apiVersion: v1\nkind: List\nitems: []'));
    expect(manager.get('foo.example.test', undefined, 80)).toBeUndefined();
    expect(dns.keys()).toEqual([]);
  });

  it('applies a label change without a new lookup', async () => {
    start();
    manager.setSnapshot(await snapshotOf(serviceEntry('DNS')));
    const v1 = await ready('foo.example.test', 'v1', 80);
    expect(describeHosts(v1)).toEqual(['192.0.2.21:8080 w3 v1']);
    const answeredAt = dns.status('us.example.test:8080')?.answeredAt;
    manager.setSnapshot(await snapshotOf(serviceEntry('DNS', 'version: v2')));
    expect(manager.get('foo.example.test', 'v1', 80)).toBe(v1);
    expect(v1?.warming).toBeUndefined();
    expect(describeHosts(v1)).toEqual([]);
    expect(v1?.unavailableReason).toContain('subset "v1"');
    expect(describeHosts(manager.get('foo.example.test', 'v2', 80))).toHaveLength(3);
    expect(dns.status('us.example.test:8080')?.answeredAt).toBe(answeredAt);
  });

  it('prefers a ServiceEntry over DNS for a Kubernetes name, and drops the watch', async () => {
    start();
    manager.setSnapshot(await snapshotOf('apiVersion: v1\nkind: List\nitems: []'));
    const cluster = await ready('reviews.shop.svc.cluster.local', undefined, 9080);
    expect(describeHosts(cluster)).toEqual(['10.1.0.11:9080 w1 ', '10.1.0.12:9080 w1 ']);
    expect(dns.keys()).toEqual(['reviews.shop.svc.cluster.local:9080']);
    manager.setSnapshot(
      await snapshotOf(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.9 }]
`),
    );
    expect(manager.get('reviews.shop.svc.cluster.local', undefined, 9080)).toBe(cluster);
    expect(describeHosts(cluster)).toEqual(['127.0.0.9:9080 w1 ']);
    expect(dns.keys()).toEqual([]);
  });

  it('keeps a new cluster warming until its first answer, and serves the previous endpoints while a changed entry warms', async () => {
    start();
    manager.setSnapshot(
      await snapshotOf(
        serviceEntry('STATIC')
          .replace(/us\.example\.test/, '127.0.0.7')
          .replace(/uk\.example\.test/, '127.0.0.8'),
      ),
    );
    const cluster = manager.get('foo.example.test', undefined, 80);
    expect(cluster?.warming).toBeUndefined();
    expect(describeHosts(cluster)).toEqual(['127.0.0.7:8080 w3 v1', '127.0.0.8:80 w1 v2']);
    // Static → DNS: the static endpoints keep serving until the names have answered.
    manager.setSnapshot(await snapshotOf(serviceEntry('DNS')));
    expect(cluster?.warming).toBeUndefined();
    expect(describeHosts(cluster)).toEqual(['127.0.0.7:8080 w3 v1', '127.0.0.8:80 w1 v2']);
    await dns.ready('us.example.test:8080');
    await dns.ready('uk.example.test:80');
    // The settle callback runs after the lookups' own promise chain.
    await new Promise((r) => setImmediate(r));
    expect(describeHosts(cluster)).toEqual(['192.0.2.21:8080 w3 v1', '192.0.2.31:80 w1 v2', '192.0.2.32:80 w1 v2']);
  });

  it('recognises Kubernetes service names without allocating', () => {
    expect(isKubernetesServiceHost('reviews.shop.svc.cluster.local', 'cluster.local')).toBe(true);
    expect(isKubernetesServiceHost('10-1-0-11.ratings.shop.svc.cluster.local', 'cluster.local')).toBe(true);
    expect(isKubernetesServiceHost('a.b.svc.corp', 'corp')).toBe(true);
    expect(isKubernetesServiceHost('shop.svc.cluster.local', 'cluster.local')).toBe(false);
    expect(isKubernetesServiceHost('reviews.shop.cluster.local', 'cluster.local')).toBe(false);
    expect(isKubernetesServiceHost('reviews.shop.svc.cluster.localx', 'cluster.local')).toBe(false);
    expect(isKubernetesServiceHost('api.example.com', 'cluster.local')).toBe(false);
  });
});

describe('Cluster endpoint updates', () => {
  const endpoint = (address: string, key = `${address}:80`): Endpoint => ({
    key,
    address,
    port: 80,
    weight: 1,
    labels: {},
    locality: UNKNOWN_LOCALITY,
    ready: true,
  });

  function makeCluster(): { cluster: Cluster; origins: string[]; closed: string[] } {
    const origins: string[] = [];
    const closed: string[] = [];
    const poolFactory: PoolFactory = (origin) => {
      origins.push(origin);
      return {
        close: () => {
          closed.push(origin);
          return Promise.resolve();
        },
      } as unknown as EndpointPool;
    };
    const lb = compileLoadBalancing(undefined, {}, { locality: UNKNOWN_LOCALITY, labels: {} });
    return { cluster: new Cluster('c', lb, { clock: systemClock, random: seededRandom(3), poolFactory }), origins, closed };
  }

  it('keeps the same host object (and its in-flight count) when an endpoint is replaced by an equal one', () => {
    const { cluster } = makeCluster();
    cluster.setEndpoints([endpoint('10.0.0.1')], true);
    const host = cluster.pick(undefined);
    expect(host).toBeDefined();
    host!.active = 2;
    cluster.setEndpoints([{ ...endpoint('10.0.0.1'), weight: 5 }], false);
    const again = cluster.pick(undefined);
    expect(again).toBe(host);
    expect(again?.endpoint.weight).toBe(5);
    expect(again?.active).toBe(2);
  });

  it('replaces the pool of a logical endpoint whose address moved', () => {
    const { cluster, origins, closed } = makeCluster();
    cluster.setEndpoints([endpoint('10.0.0.1', 'api.example.test:80')], true);
    cluster.pool(cluster.pick(undefined)!);
    cluster.setEndpoints([endpoint('10.0.0.2', 'api.example.test:80')], false);
    expect(closed).toEqual(['http://10.0.0.1:80']);
    cluster.pool(cluster.pick(undefined)!);
    expect(origins).toEqual(['http://10.0.0.1:80', 'http://10.0.0.2:80']);
  });
});
