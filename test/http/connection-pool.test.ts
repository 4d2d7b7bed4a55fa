import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { RequestLog } from '../helpers/request-log.js';

let pods: Pods;
let log: RequestLog;
let dir: string;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  log = new RequestLog(pods);
  dir = await mkdtemp(join(tmpdir(), 'sidecarless-pool-'));
});
afterAll(async () => {
  await pods.close();
  await rm(dir, { recursive: true, force: true });
});

let mesh: Mesh | undefined;
/** The client port of every request the pod received (read on arrival: a closed socket has none). */
let ports: (number | undefined)[] = [];
let hold = false;
beforeAll(() => {
  log.take = (seen) => {
    ports.push(seen.req.socket.remotePort);
    return hold;
  };
});
afterEach(async () => {
  hold = false;
  ports = [];
  log.clear();
  await mesh?.close();
  mesh = undefined;
});

const config = (trafficPolicy: string) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ratings, namespace: shop }
spec:
  hosts: [ratings.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.2 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ratings, namespace: shop }
spec:
  host: ratings
  trafficPolicy: ${trafficPolicy}
`;

async function start(trafficPolicy: string): Promise<Mesh> {
  mesh = await meshFromYaml(config(trafficPolicy), { namespace: 'shop', random: seededRandom(3), dns: false });
  return mesh;
}

/** The pod holds every request it receives until the test answers it. */
function holdRequests(): void {
  hold = true;
}

function answerAll(): void {
  for (const seen of log.seen) if (!seen.res.headersSent) seen.res.end('late');
}

const url = () => `http://ratings:${pods.port}/`;

describe('connectionPool limits', () => {
  it('answers 503 with x-envoy-overloaded once http1MaxPendingRequests are queued, without touching the network', async () => {
    await start('{ connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } }');
    holdRequests();
    // The first request takes the only connection; the second waits for it (pending).
    const first = mesh!.request(url());
    await log.until(() => log.seen.length === 1);
    const second = mesh!.request(url());
    const third = await mesh!.fetch(url());
    expect(third.status).toBe(503);
    expect(third.headers.get('x-envoy-overloaded')).toBe('true');
    expect(await third.text()).toBe('upstream connect error or disconnect/reset before headers. reset reason: overflow');
    answerAll();
    expect((await first).statusCode).toBe(200);
    await log.until(() => log.seen.length === 2);
    answerAll();
    expect((await second).statusCode).toBe(200);
    // The overflowing request never reached the pod.
    expect(log.seen).toHaveLength(2);
  });

  it('caps outstanding requests at http2MaxRequests for HTTP/1.1 too', async () => {
    await start('{ connectionPool: { http: { http2MaxRequests: 2 } } }');
    holdRequests();
    const inFlight = [mesh!.request(url()), mesh!.request(url())];
    await log.until(() => log.seen.length === 2);
    const refused = await mesh!.request(url());
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['x-envoy-overloaded']).toBe('true');
    answerAll();
    for (const res of await Promise.all(inFlight)) expect(res.statusCode).toBe(200);
    // Capacity is back once they finished.
    hold = false;
    expect((await mesh!.request(url())).statusCode).toBe(200);
    expect(log.seen).toHaveLength(3);
  });

  it('opens a new connection for every request with maxRequestsPerConnection: 1', async () => {
    await start('{ connectionPool: { http: { maxRequestsPerConnection: 1 } } }');
    for (let i = 0; i < 3; i++) await (await mesh!.request(url())).body.dump();
    expect(new Set(ports).size).toBe(3);
  });

  it('reuses connections for sequential requests without it', async () => {
    await start('{ loadBalancer: { simple: ROUND_ROBIN } }');
    for (let i = 0; i < 6; i++) await (await mesh!.request(url())).body.dump();
    expect(new Set(ports).size).toBeLessThan(6);
  });

  it('applies changed connection options to new connections and lets in-flight requests finish', async () => {
    const file = join(dir, 'ratings.yaml');
    await writeFile(file, config('{ loadBalancer: { simple: ROUND_ROBIN } }'));
    mesh = await createMesh({ namespace: 'shop', config: [file], dns: false });
    for (let i = 0; i < 4; i++) await (await mesh.request(url())).body.dump();
    const before = new Set(ports);
    expect(before.size).toBeLessThan(4);
    holdRequests();
    const slow = mesh.request(url());
    await log.until(() => log.seen.length === 5);
    const changed = new Promise((resolve) => mesh!.once('snapshot', resolve));
    await writeFile(file, config('{ connectionPool: { http: { maxRequestsPerConnection: 1 } } }'));
    await changed;
    answerAll();
    expect((await slow).statusCode).toBe(200);
    hold = false;
    for (let i = 0; i < 3; i++) await (await mesh.request(url())).body.dump();
    // After the change: a new connection per request, none of the old ones.
    const after = ports.slice(5);
    expect(new Set(after).size).toBe(3);
    for (const port of after) expect(before.has(port)).toBe(false);
  });
});
