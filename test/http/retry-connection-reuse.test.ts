import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';

/**
 * A retriable answer (503 under Istio's default policy) with a small body is read to its end and
 * its connection kept for the next request, as Envoy drains such a response; only a large or
 * unbounded body is cut (its connection closed). The retry never waits for that drain. Pod .2
 * answers what `failing` says, pod .3 serves; each counts the TCP connections it accepted.
 */
type Failing = (req: IncomingMessage, res: ServerResponse) => void;

interface Pod {
  readonly server: Server;
  connections: number;
  readonly sockets: Set<Socket>;
}

const pods = new Map<string, Pod>();
let port = 0;
const SMALL_503: Failing = (_req, res) => res.writeHead(503, { 'content-type': 'text/plain' }).end('busy, try another pod');
let failing: Failing = SMALL_503;
/** 503s pod .2 answered. */
let failed = 0;
let mesh: Mesh | undefined;

async function listen(address: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<void> {
  const server = createServer(handler);
  server.keepAliveTimeout = 30_000;
  const pod: Pod = { server, connections: 0, sockets: new Set() };
  server.on('connection', (socket: Socket) => {
    pod.connections++;
    pod.sockets.add(socket);
    socket.once('close', () => pod.sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  pods.set(address, pod);
}

beforeAll(async () => {
  await listen('127.0.0.2', (req, res) => {
    req.resume();
    failed++;
    failing(req, res);
  });
  await listen('127.0.0.3', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'x-pod': '127.0.0.3' }).end('served');
  });
});
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
  failing = SMALL_503;
  failed = 0;
  for (const pod of pods.values()) {
    pod.connections = 0;
    pod.server.closeAllConnections();
  }
});
afterAll(async () => {
  await Promise.all([...pods.values()].map((p) => new Promise<void>((resolve) => p.server.close(() => resolve()))));
});

async function start(): Promise<Mesh> {
  mesh = await meshFromYaml(
    `${reviewsServiceEntry(port, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
`,
    { namespace: 'shop', random: seededRandom(2) },
  );
  return mesh;
}

async function sendSequentially(m: Mesh, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await m.request(`http://reviews:${port}/item/${i}`);
    statuses.push(res.statusCode);
    await res.body.text();
  }
  return statuses;
}

describe('a retried 5xx keeps its connection when its body is small', () => {
  it('30 requests first answered 503 by pod .2 and retried on .3: all succeed, and .2 accepted one connection', async () => {
    const m = await start();
    const statuses = await sendSequentially(m, 30);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(failed).toBeGreaterThanOrEqual(15);
    // Requests are sequential: the pool needs one connection per pod.
    expect(pods.get('127.0.0.2')!.connections).toBe(1);
    expect(pods.get('127.0.0.3')!.connections).toBe(1);
  });

  it('a 503 with a content-length body, sent apart from its headers, keeps its connection too', async () => {
    failing = (_req, res) => {
      res.writeHead(503, { 'content-length': '12' });
      res.flushHeaders();
      setImmediate(() => res.end('come back in'));
    };
    const m = await start();
    expect((await sendSequentially(m, 10)).every((s) => s === 200)).toBe(true);
    expect(failed).toBeGreaterThanOrEqual(5);
    expect(pods.get('127.0.0.2')!.connections).toBe(1);
  });

  it('a 503 whose large body (256 KiB) is not worth reading is cut: one connection per 503', async () => {
    failing = (_req, res) => res.writeHead(503, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(256 * 1024, 1));
    const m = await start();
    expect((await sendSequentially(m, 10)).every((s) => s === 200)).toBe(true);
    expect(failed).toBeGreaterThanOrEqual(5);
    expect(pods.get('127.0.0.2')!.connections).toBe(failed);
  });

  it('the retry does not wait for the drain: a small 503 body that stalls half-way still gets the caller its 200', async () => {
    const stalled: ServerResponse[] = [];
    failing = (_req, res) => {
      res.writeHead(503, { 'content-length': '100' });
      res.write('only ten b');
      stalled.push(res);
    };
    const m = await start();
    const statuses = await sendSequentially(m, 4);
    expect(statuses).toEqual([200, 200, 200, 200]);
    expect(stalled.length).toBeGreaterThanOrEqual(2);
    // Once the request is answered, the stalled drains are given up: their connections close.
    await Promise.all(stalled.map((res) => (res.socket === null || res.socket.destroyed ? undefined : new Promise((r) => res.socket!.once('close', r)))));
  });
});
