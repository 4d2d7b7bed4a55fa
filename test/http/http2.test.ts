import { createServer } from 'node:http2';
import type { Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';

/** Cleartext HTTP/2 servers (prior knowledge, as Envoy speaks h2c upstream) on 127.0.0.6 and .7. */
let h2Servers: Http2Server[] = [];
let h2Port = 0;
/** HTTP/1.1 pods on 127.0.0.2 and .3. */
let pods: Pods;
let mesh: Mesh;

async function startH2(addresses: readonly string[]): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      for (const address of addresses) {
        const server = createServer((req, res) => {
          req.resume();
          res.setHeader('content-type', 'application/json');
          res.setHeader('x-pod', address);
          res.end(JSON.stringify({ pod: address, version: req.httpVersion, authority: req.headers[':authority'], path: req.url }));
        });
        h2Servers.push(server);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(h2Port, address, () => resolve());
        });
        h2Port ||= (server.address() as AddressInfo).port;
      }
      return;
    } catch {
      // The first server's random port was taken on another address: start over.
      await closeH2();
      h2Port = 0;
    }
  }
  throw new Error('could not find a free port on every HTTP/2 pod address');
}

async function closeH2(): Promise<void> {
  await Promise.all(h2Servers.map((s) => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve()))));
  h2Servers = [];
}

const serviceEntry = (name: string, p: number, protocol: string, addresses: readonly string[]) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${p}, name: port, protocol: ${protocol} }]
  endpoints: [${addresses.map((a) => `{ address: ${a} }`).join(', ')}]
---`;

const destinationRule = (name: string, http: string) => `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop }
spec:
  host: ${name}
  trafficPolicy: { connectionPool: { http: ${http} }, loadBalancer: { simple: ROUND_ROBIN } }
---`;

const config = (h2: number, h1: number) => `
${serviceEntry('upgraded', h2, 'HTTP', ['127.0.0.6', '127.0.0.7'])}
${destinationRule('upgraded', '{ h2UpgradePolicy: UPGRADE }')}
${serviceEntry('grpc-port', h2, 'GRPC', ['127.0.0.6'])}
${serviceEntry('http2-port', h2, 'HTTP2', ['127.0.0.7'])}
${serviceEntry('client-protocol', h1, 'HTTP', ['127.0.0.2', '127.0.0.3'])}
${destinationRule('client-protocol', '{ useClientProtocol: true }')}
${serviceEntry('plain', h1, 'HTTP', ['127.0.0.2'])}
${destinationRule('plain', '{ h2UpgradePolicy: DO_NOT_UPGRADE }')}
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: upgraded, namespace: shop }
spec:
  hosts: [upgraded]
  http:
  - headers: { response: { add: { x-mesh: h2 } } }
    route: [{ destination: { host: upgraded } }]
`;

beforeAll(async () => {
  await startH2(['127.0.0.6', '127.0.0.7']);
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  mesh = await meshFromYaml(config(h2Port, pods.port), { namespace: 'shop', random: seededRandom(9) });
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
  await closeH2();
});

interface H2Reply {
  readonly pod: string;
  readonly version: string;
  readonly authority: string;
  readonly path: string;
}

describe('HTTP/2 to endpoints where the policy says so', () => {
  it('speaks HTTP/2 (h2c prior knowledge) with h2UpgradePolicy: UPGRADE, the service name as :authority', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const res = await mesh.request(`http://upgraded:${h2Port}/items/${i}?x=1`);
      const body = (await res.body.json()) as H2Reply;
      expect(body.version).toBe('2.0');
      expect(body.authority).toBe(`upgraded:${h2Port}`);
      expect(body.path).toBe(`/items/${i}?x=1`);
      expect(res.headers['x-mesh']).toBe('h2');
      seen.add(body.pod);
    }
    expect(seen.size).toBe(2);
    // fetch reads the raw header list, which must carry the route's response rules on h2 too.
    const fetched = await mesh.fetch(`http://upgraded:${h2Port}/fetch`, { method: 'POST', body: 'payload' });
    expect(((await fetched.json()) as H2Reply).version).toBe('2.0');
    expect(fetched.headers.get('x-mesh')).toBe('h2');
  });

  it("serves Node's global fetch (undici 7 handler) from an HTTP/2 pool", async () => {
    const res = await globalThis.fetch(`http://upgraded:${h2Port}/node-fetch`, { dispatcher: mesh.dispatcher } as RequestInit);
    expect(((await res.json()) as H2Reply).version).toBe('2.0');
    expect(res.headers.get('x-mesh')).toBe('h2');
  });

  it('speaks HTTP/2 to a port declared GRPC or HTTP2, without any DestinationRule', async () => {
    for (const name of ['grpc-port', 'http2-port']) {
      const res = await mesh.request(`http://${name}:${h2Port}/`);
      expect(((await res.body.json()) as H2Reply).version).toBe('2.0');
    }
  });

  it('keeps HTTP/1.1 with useClientProtocol (the caller speaks HTTP/1.1) and with DO_NOT_UPGRADE', async () => {
    for (const name of ['client-protocol', 'plain']) {
      const res = await mesh.request(`http://${name}:${pods.port}/`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-pod']).toMatch(/^127\.0\.0\.[23]$/);
      await res.body.dump();
    }
  });
});
