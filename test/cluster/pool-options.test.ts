import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { describe, expect, it } from 'vitest';
import { seededRandom, systemClock } from '../../src/clock.js';
import { ClusterManager } from '../../src/cluster/cluster-manager.js';
import type { PoolFactory, PoolOptions } from '../../src/transport/pool-factory.js';
import { defaultPoolFactory } from '../../src/transport/pool-factory.js';
import { ConfigStore } from '../../src/config/config-store.js';
import type { Snapshot } from '../../src/config/snapshot.js';
import { InlineSource } from '../../src/config/sources/index.js';
import { UNKNOWN_LOCALITY } from '../../src/discovery/endpoint.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { systemTool } from '../helpers/system-tools.js';

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

const config = (trafficPolicy: string, endpoints = ['10.0.0.1', '10.0.0.2']) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.shop.svc.cluster.local]
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP }]
  endpoints:
${endpoints.map((a) => `  - { address: ${a} }`).join('\n')}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: shop }
spec:
  host: ratings
  trafficPolicy: ${trafficPolicy}
`;

/** The options the first endpoint's pool is built with under `trafficPolicy`. */
async function poolOptions(trafficPolicy: string, endpoints?: string[]): Promise<PoolOptions> {
  const seen: PoolOptions[] = [];
  const factory: PoolFactory = (origin, endpoint, options) => {
    seen.push(options);
    return defaultPoolFactory(origin, endpoint, options);
  };
  const manager = new ClusterManager({
    clock: systemClock,
    random: seededRandom(1),
    caller: { locality: UNKNOWN_LOCALITY, labels: {} },
    poolFactory: factory,
  });
  try {
    manager.setSnapshot(await snapshotOf(config(trafficPolicy, endpoints)));
    const cluster = manager.get('ratings.shop.svc.cluster.local', undefined, 9080)!;
    cluster.pool(cluster.pick(undefined)!);
    return seen[0]!;
  } finally {
    await manager.close();
  }
}

describe('connectionPool → undici Pool options', () => {
  it("defaults: no connection limit, Istio's 10 s connect timeout, undici's keep-alive", async () => {
    expect(await poolOptions('{ loadBalancer: { simple: ROUND_ROBIN } }')).toEqual({
      http2: false,
      connections: null,
      connectTimeoutMs: 10_000,
      keepAliveTimeoutMs: undefined,
      maxRequestsPerConnection: undefined,
      maxConcurrentStreams: undefined,
      maxConnectionDurationMs: undefined,
      keepAliveDelayMs: undefined,
      keepAliveIntervalMs: undefined,
      keepAliveProbes: undefined,
      h2PingIntervalMs: undefined,
      h2PingTimeoutMs: undefined,
    });
  });

  it('maps every supported field', async () => {
    expect(
      await poolOptions(`
    connectionPool:
      tcp: { maxConnections: 5, connectTimeout: 250ms, idleTimeout: 30s, maxConnectionDuration: 1h, tcpKeepalive: { time: 45s, interval: 5s, probes: 4 } }
      http: { idleTimeout: 90s, maxRequestsPerConnection: 7, maxConcurrentStreams: 50, http2KeepAlive: { interval: 20s, timeout: 4s }, h2UpgradePolicy: UPGRADE }`),
    ).toEqual({
      http2: true,
      // Five connections over two endpoints: three each.
      connections: 3,
      connectTimeoutMs: 250,
      // The HTTP idle timeout wins over the TCP one, as istiod sets it.
      keepAliveTimeoutMs: 90_000,
      maxRequestsPerConnection: 7,
      maxConcurrentStreams: 50,
      maxConnectionDurationMs: 3_600_000,
      keepAliveDelayMs: 45_000,
      keepAliveIntervalMs: 5_000,
      keepAliveProbes: 4,
      h2PingIntervalMs: 20_000,
      h2PingTimeoutMs: 4_000,
    });
  });

  it('uses the TCP idle timeout when the HTTP one is unset, and accepts 0s (never close idle connections)', async () => {
    expect((await poolOptions('{ connectionPool: { tcp: { idleTimeout: 15s } } }')).keepAliveTimeoutMs).toBe(15_000);
    const never = await poolOptions('{ connectionPool: { tcp: { idleTimeout: 0s } } }');
    expect(never.keepAliveTimeoutMs).toBe(0);
    const pool = defaultPoolFactory(
      'http://10.0.0.1:9080',
      {
        key: '10.0.0.1:9080',
        address: '10.0.0.1',
        port: 9080,
        weight: 1,
        labels: {},
        locality: UNKNOWN_LOCALITY,
        ready: true,
      },
      never,
    );
    expect(pool).toBeInstanceOf(Pool);
    await pool.close();
  });

  it('gives a single endpoint the whole maxConnections', async () => {
    expect((await poolOptions('{ connectionPool: { tcp: { maxConnections: 5 } } }', ['10.0.0.1'])).connections).toBe(5);
  });

  it('tcpKeepalive sets the idle time before the first probe on real connections, also when interval and probes are set', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    const port = (server.address() as AddressInfo).port;
    const endpoint = { key: `127.0.0.2:${port}`, address: '127.0.0.2', port, weight: 1, labels: {}, locality: UNKNOWN_LOCALITY, ready: true };
    /** The kernel's keep-alive timer of our connection to the server, as `ss` shows it: `keepalive,44sec,0`. */
    const timerOf = async (tcp: string): Promise<string | undefined> => {
      const options = await poolOptions(`{ connectionPool: { tcp: ${tcp} } }`);
      const pool = defaultPoolFactory(`http://127.0.0.2:${port}`, endpoint, options);
      try {
        const reply = await (pool as unknown as Pool).request({ path: '/', method: 'GET' });
        await reply.body.text();
        const line = execFileSync(systemTool('ss'), ['-tnoH', 'state', 'established', 'dst', `127.0.0.2:${port}`], { encoding: 'utf8' });
        return /timer:\((keepalive,[^,]+),/.exec(line)?.[1];
      } finally {
        await pool.close();
      }
    };
    try {
      // Without it, undici's own default: keep-alive after 60 s idle.
      expect(await timerOf('{ maxConnections: 5 }')).toMatch(/^keepalive,(59|60)sec$/);
      expect(await timerOf('{ tcpKeepalive: { time: 45s } }')).toMatch(/^keepalive,4[45]sec$/);
      expect(await timerOf('{ tcpKeepalive: { time: 45s, interval: 5s, probes: 4 } }')).toMatch(/^keepalive,4[45]sec$/);
    } finally {
      server.close();
    }
  });
});
