import { createServer } from 'node:http2';
import type { Http2Server, ServerHttp2Session } from 'node:http2';
import { connect, createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { Http2PingTimeoutError, MeshError } from '../../src/index.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

/**
 * An h2c server on 127.0.0.2 behind a TCP relay on the same address. The relay is the endpoint the
 * mesh connects to; freezing one of its connections makes the peer go silent (PINGs get no ACK)
 * while the TCP connection stays open, as a hung host or a black-holed path would.
 */
const ADDRESS = '127.0.0.2';

interface Relayed {
  readonly client: Socket;
  readonly upstream: Socket;
  frozen: boolean;
}

let h2: Http2Server;
let relay: Server;
let relayPort = 0;
const relayed: Relayed[] = [];
const sessionIds = new Map<ServerHttp2Session, number>();
const pingsBySession = new Map<number, number>();
let mesh: Mesh;

async function listen(server: Server | Http2Server): Promise<number> {
  server.listen(0, ADDRESS);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function startRelay(upstreamPort: number): Server {
  return createTcpServer((client) => {
    const upstream = connect(upstreamPort, ADDRESS);
    const conn: Relayed = { client, upstream, frozen: false };
    relayed.push(conn);
    client.on('data', (chunk) => conn.frozen || upstream.write(chunk));
    upstream.on('data', (chunk) => conn.frozen || client.write(chunk));
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  });
}

const config = (port: number) => `
${['frozen', 'steady', 'hung']
  .map(
    (name) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ${name}, namespace: shop }
spec:
  hosts: [${name}.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${port}, name: http, protocol: HTTP2 }]
  endpoints: [{ address: ${ADDRESS} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: ${name}, namespace: shop }
spec:
  host: ${name}
  trafficPolicy:
    # An hour idle: only the PING timeout may close a connection here.
    connectionPool: { http: { idleTimeout: 1h, http2KeepAlive: { interval: 100ms, timeout: 400ms } } }
---`,
  )
  .join('\n')}
`;

beforeAll(async () => {
  let nextId = 0;
  h2 = createServer((req, res) => {
    req.resume();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ session: sessionIds.get(req.stream.session as ServerHttp2Session) }));
  });
  h2.on('session', (session) => {
    const id = ++nextId;
    sessionIds.set(session, id);
    session.on('ping', () => pingsBySession.set(id, (pingsBySession.get(id) ?? 0) + 1));
  });
  const h2Port = await listen(h2);
  relay = startRelay(h2Port);
  relayPort = await listen(relay);
  mesh = await meshFromYaml(config(relayPort), { namespace: 'shop' });
});

afterAll(async () => {
  await mesh.close();
  for (const conn of relayed) conn.client.destroy();
  await new Promise<void>((resolve) => relay.close(() => resolve()));
  await new Promise<void>((resolve) => h2.close(() => resolve()));
});

/** Which server session answered a request through the mesh, and its status. */
async function ask(host: string): Promise<{ status: number; session: number }> {
  const res = await mesh.request(`http://${host}:${relayPort}/`);
  const body = (await res.body.json()) as { session: number };
  return { status: res.statusCode, session: body.session };
}

/** Resolves when `condition` holds, polling; rejects with `what` after a generous limit. */
async function until(condition: () => boolean, what: string, limitMs = 8_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('DestinationRule connectionPool.http.http2KeepAlive.timeout', () => {
  it('closes a connection whose PINGs go unanswered; the next request succeeds on a new connection', async () => {
    const first = await ask('frozen');
    expect(first.status).toBe(200);
    const conn = relayed.at(-1)!;
    let closed = false;
    conn.client.once('close', () => (closed = true));

    // The peer goes silent: nothing reaches the server, nothing comes back; TCP stays up.
    conn.frozen = true;
    await until(() => closed, 'the mesh to close the silent connection');

    const next = await ask('frozen');
    expect(next.status).toBe(200);
    expect(next.session).not.toBe(first.session);
    expect(relayed.at(-1)).not.toBe(conn);
  });

  it('fails a request in flight on the silent connection with Http2PingTimeoutError (ERR_MESH_HTTP2_PING_TIMEOUT)', async () => {
    expect((await ask('hung')).status).toBe(200);
    relayed.at(-1)!.frozen = true;
    const error = await mesh.request(`http://hung:${relayPort}/`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Http2PingTimeoutError);
    expect(error).toBeInstanceOf(MeshError);
    expect((error as Http2PingTimeoutError).code).toBe('ERR_MESH_HTTP2_PING_TIMEOUT');
    expect((error as Error).message).toMatch(/PING not answered within 400 ms/);
  });

  it('keeps a connection whose peer answers its PINGs: the same session serves requests across intervals', async () => {
    const first = await ask('steady');
    expect(first.status).toBe(200);
    const conn = relayed.at(-1)!;
    // Twelve PINGs at 100 ms span more than two `interval + timeout` windows (500 ms each).
    await until(() => (pingsBySession.get(first.session) ?? 0) >= 12, 'twelve PINGs on the steady connection');

    const later = await ask('steady');
    expect(later).toEqual({ status: 200, session: first.session });
    expect(conn.client.destroyed).toBe(false);
  });
});
