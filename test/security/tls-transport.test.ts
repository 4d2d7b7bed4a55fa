// TLS composes with the rest of the transport: HTTP/2 is negotiated by ALPN only where the port
// speaks HTTP/2, the HTTP/2 PING watch (http2KeepAlive.timeout) and TCP keep-alive probes apply
// to TLS connections as to plaintext ones. A real HTTP/2 TLS server (allowing HTTP/1.1 too), and a
// TCP relay in front of it that can go silent.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { createSecureServer } from 'node:http2';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import { connect, createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { TestCa } from '../helpers/certs.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const ADDRESS = '127.0.0.2';
const HOST = 'api.example.com';

interface Relayed {
  readonly client: Socket;
  frozen: boolean;
}

let dir: string;
let ca: TestCa;
let server: Http2SecureServer;
let relay: Server;
let relayPort = 0;
const relayed: Relayed[] = [];
const sessionIds = new Map<ServerHttp2Session, number>();
let mesh: Mesh | undefined;

interface Answer {
  readonly httpVersion: string;
  readonly alpn: string | false | null;
  readonly sni: string | null;
  readonly session: number | null;
}

beforeAll(async () => {
  dir = await makeTempDir();
  ca = TestCa.create(dir);
  const cert = ca.issue(HOST, { dns: [HOST] });
  let nextId = 0;
  server = createSecureServer({ cert: cert.cert, key: cert.key, allowHTTP1: true }, (req, res) => {
    req.resume();
    const socket = req.socket as TLSSocket & { servername?: string | false };
    const answer: Answer = {
      httpVersion: req.httpVersion,
      alpn: socket.alpnProtocol ?? null,
      sni: typeof socket.servername === 'string' ? socket.servername : null,
      session: req.stream ? (sessionIds.get(req.stream.session as ServerHttp2Session) ?? null) : null,
    };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(answer));
  });
  server.on('session', (session) => sessionIds.set(session, ++nextId));
  server.listen(0, ADDRESS);
  await once(server, 'listening');
  const serverPort = (server.address() as AddressInfo).port;
  // The endpoint the mesh connects to: a relay that can freeze a connection (TCP stays up, nothing flows).
  relay = createTcpServer((client) => {
    const upstream = connect(serverPort, ADDRESS);
    const conn: Relayed = { client, frozen: false };
    relayed.push(conn);
    client.on('data', (chunk) => conn.frozen || upstream.write(chunk));
    upstream.on('data', (chunk) => conn.frozen || client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
  relay.listen(0, ADDRESS);
  await once(relay, 'listening');
  relayPort = (relay.address() as AddressInfo).port;
});

afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

afterAll(async () => {
  for (const conn of relayed) conn.client.destroy();
  await new Promise<void>((resolve) => relay.close(() => resolve()));
  server.close();
  await removeTempDir(dir);
});

/** Port 80 declared HTTP and port 81 declared HTTP2, both to the relay; the rule originates TLS. */
function config(connectionPool = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports:
  - { number: 80, name: http, protocol: HTTP, targetPort: ${relayPort} }
  - { number: 81, name: http2, protocol: HTTP2, targetPort: ${relayPort} }
  endpoints: [{ address: ${ADDRESS} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy:
    tls: { mode: SIMPLE, caCertificates: ${ca.certPath} }
${connectionPool}`;
}

async function ask(port: number): Promise<Answer> {
  const res = await mesh!.request(`http://${HOST}:${port}/`);
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as Answer;
}

async function until(condition: () => boolean, what: string, limitMs = 8_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('TLS and the rest of the transport', () => {
  it('ALPN offers h2 only where the port speaks HTTP/2: HTTP/1.1 on an HTTP port, HTTP/2 on an HTTP2 port', async () => {
    mesh = await meshFromYaml(config(), { namespace: 'shop' });
    expect(await ask(80)).toMatchObject({ httpVersion: '1.1', alpn: 'http/1.1', sni: HOST });
    expect(await ask(81)).toMatchObject({ httpVersion: '2.0', alpn: 'h2', sni: HOST });
  });

  it('http2KeepAlive.timeout closes a silent TLS connection; the next request opens a new one', async () => {
    mesh = await meshFromYaml(config('    connectionPool: { http: { idleTimeout: 1h, http2KeepAlive: { interval: 100ms, timeout: 400ms } } }'), {
      namespace: 'shop',
    });
    const first = await ask(81);
    expect(first.alpn).toBe('h2');
    const conn = relayed.at(-1)!;
    let closed = false;
    conn.client.once('close', () => (closed = true));
    conn.frozen = true;
    await until(() => closed, 'the mesh to close the silent TLS connection');
    const next = await ask(81);
    expect(next.alpn).toBe('h2');
    expect(next.session).not.toBe(first.session);
  });

  it('TCP keep-alive (tcpKeepalive time, interval, probes) is set on TLS connections', async () => {
    mesh = await meshFromYaml(config('    connectionPool: { tcp: { tcpKeepalive: { time: 45s, interval: 5s, probes: 4 } } }'), { namespace: 'shop' });
    expect((await ask(80)).sni).toBe(HOST);
    const line = execFileSync('ss', ['-tnoH', 'state', 'established', 'dst', `${ADDRESS}:${relayPort}`], { encoding: 'utf8' });
    expect(/timer:\((keepalive,[^,]+),/.exec(line)?.[1]).toMatch(/^keepalive,4[45]sec$/);
  });
});
