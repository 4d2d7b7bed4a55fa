import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { Http2Server, Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect as netConnect } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { writeCertificateDirectory } from '../../src/security/dev-ca/write-layout.js';
import type { PeerRejectedError } from '../../src/security/errors.js';
import { SecurityOptionError } from '../../src/security/errors.js';
import { peerIdentity } from '../../src/security/peer-identity.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import type { ClientResult } from '../helpers/mtls-client.js';
import { rawExchange, send } from '../helpers/mtls-client.js';
import { OtelHarness } from '../helpers/otel.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const DAY = 86_400_000;

/** What the application answers: how the request came and who called. */
function whoCalled(req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse): void {
  const id = peerIdentity(req);
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      encrypted: 'encrypted' in req.socket && req.socket.encrypted === true,
      httpVersion: req.httpVersion,
      identity: id && {
        spiffeId: id.spiffeId,
        trustDomain: id.trustDomain,
        namespace: id.namespace,
        serviceAccount: id.serviceAccount,
        principal: id.principal,
      },
    }),
  );
}

function peerAuthentication(mode: string, namespace = 'shop', extra = ''): string {
  return `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: ${namespace} }
spec:
  mtls: { mode: ${mode} }
${extra}`;
}

async function listen<S extends Server | Http2Server>(server: S): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function closeServer(server: Server | Http2Server): Promise<void> {
  return new Promise((resolve) => {
    if ('closeAllConnections' in server) server.closeAllConnections();
    server.close(() => resolve());
  });
}

function body(result: ClientResult): { encrypted: boolean; httpVersion: string; identity?: Record<string, string> } {
  if (!result.ok) throw new Error(`request failed: ${result.code} ${result.message}`);
  expect(result.status).toBe(200);
  return JSON.parse(result.body) as { encrypted: boolean; httpVersion: string; identity?: Record<string, string> };
}

describe('inbound mTLS per PeerAuthentication', () => {
  const ca = DevCa.create();
  const otherCa = DevCa.create({ commonName: 'another mesh' });
  const client = ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });
  let dir: string;
  let otel: OtelHarness;
  let mesh: Mesh | undefined;
  let servers: (Server | Http2Server)[];
  let rejections: PeerRejectedError[];

  beforeAll(async () => {
    dir = await makeTempDir();
    await writeCertificateDirectory(dir, 'istio', ca.issue({ namespace: 'shop', serviceAccount: 'reviews', ips: ['127.0.0.1'] }));
  });
  afterAll(async () => {
    await removeTempDir(dir);
  });
  beforeEach(() => {
    otel = new OtelHarness({ tracing: false });
    servers = [];
    rejections = [];
  });
  afterEach(async () => {
    await Promise.all(servers.map(closeServer));
    await mesh?.close();
    mesh = undefined;
    await otel.shutdown();
  });

  async function start(yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<Mesh> {
    mesh = await createMesh({
      namespace: 'shop',
      labels: { app: 'reviews' },
      certificates: { directory: dir },
      dns: false,
      watch: false,
      ...options,
      config: docs(yaml),
    });
    mesh.on('inboundRejected', (e) => rejections.push(e));
    return mesh;
  }

  async function serve(m: Mesh): Promise<number> {
    const server = m.createServer(whoCalled);
    servers.push(server);
    return listen(server);
  }

  /** An mTLS request with `identity` (the frontend's by default; null: a TLS client without certificate). */
  const mtls = (port: number, identity: Pick<IssuedCertificate, 'chainPem' | 'keyPem'> | null = client) =>
    send(port, true, { ca: ca.certificatePem, ...(identity ? { identity } : {}) });

  async function inboundCount(outcome: string, reason = ''): Promise<number> {
    const points = await otel.metric('sidecarless.inbound.connections');
    return points
      .filter((p) => p.attributes['sidecarless.inbound.outcome'] === outcome && p.attributes['sidecarless.inbound.reason'] === reason)
      .reduce((sum, p) => sum + (p.value as number), 0);
  }

  describe('STRICT', () => {
    it('serves an mTLS client and tells the application who called', async () => {
      const port = await serve(await start(peerAuthentication('STRICT')));
      const seen = body(await mtls(port));
      expect(seen.encrypted).toBe(true);
      expect(seen.identity).toEqual({
        spiffeId: 'spiffe://cluster.local/ns/shop/sa/frontend',
        trustDomain: 'cluster.local',
        namespace: 'shop',
        serviceAccount: 'frontend',
        principal: 'cluster.local/ns/shop/sa/frontend',
      });
      expect(await inboundCount('mtls')).toBe(1);
    });

    it('refuses plaintext: the connection is closed without an HTTP response, counted and logged', async () => {
      const lines: Record<string, unknown>[] = [];
      const log = (obj: object) => lines.push(obj as Record<string, unknown>);
      const port = await serve(await start(peerAuthentication('STRICT'), { logger: { debug: log, info: log, warn: log, error: log } }));
      const exchange = await rawExchange(port, 'GET / HTTP/1.1\r\nhost: reviews\r\n\r\n');
      expect(exchange.received).toBe('');
      const viaClient = await send(port, false);
      expect(viaClient.ok).toBe(false);
      expect(rejections.map((e) => [e.code, e.reason, e.mode, e.port])).toEqual([
        ['ERR_MESH_PEER_REJECTED', 'plaintext', 'STRICT', port],
        ['ERR_MESH_PEER_REJECTED', 'plaintext', 'STRICT', port],
      ]);
      expect(rejections[0]?.message).toMatch(
        /^inbound connection from 127\.0\.0\.1 to port \d+ refused \(STRICT\): plaintext connection to a port that requires mutual TLS/,
      );
      expect(await inboundCount('rejected', 'plaintext')).toBe(2);
      expect(lines.filter((l) => l.event === 'inbound.rejected')).toEqual([
        { event: 'inbound.rejected', code: 'ERR_MESH_PEER_REJECTED', reason: 'plaintext', mode: 'STRICT', port, remoteAddress: '127.0.0.1' },
        { event: 'inbound.rejected', code: 'ERR_MESH_PEER_REJECTED', reason: 'plaintext', mode: 'STRICT', port, remoteAddress: '127.0.0.1' },
      ]);
    });

    it.each([
      ['a client without certificate', null, 'no-certificate', /presented no certificate/],
      [
        'a certificate from another CA',
        otherCa.issue({ namespace: 'shop', serviceAccount: 'intruder' }),
        'untrusted',
        /does not chain to the mesh's root certificates/,
      ],
      [
        'an expired certificate',
        ca.issue({ notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) }),
        'expired',
        /expired at .*CERT_HAS_EXPIRED/,
      ],
      ['a not-yet-valid certificate', ca.issue({ notBefore: new Date(Date.now() + DAY) }), 'not-yet-valid', /not valid before .*CERT_NOT_YET_VALID/],
      [
        'a certificate of another trust domain',
        ca.issue({ trustDomain: 'other.example' }),
        'identity',
        /trust domain "other\.example" .* is not accepted; accepted: cluster\.local/,
      ],
      ['a certificate without SPIFFE ID', ca.issue({ spiffeId: null, dnsNames: ['frontend.shop'] }), 'identity', /has no SPIFFE ID/],
      ['a certificate with a malformed SPIFFE ID', ca.issue({ spiffeId: 'spiffe://cluster.local/ns/../sa/x' }), 'identity', /has no SPIFFE ID/],
    ] as const)('refuses %s with a clear error, counted', async (_what, identity, reason, message) => {
      const port = await serve(await start(peerAuthentication('STRICT')));
      const result = await mtls(port, identity);
      expect(result.ok).toBe(false);
      expect(rejections).toHaveLength(1);
      expect(rejections[0]?.reason).toBe(reason);
      expect(rejections[0]?.message).toMatch(message);
      expect(await inboundCount('rejected', reason)).toBe(1);
      expect(await inboundCount('mtls')).toBe(0);
    });

    it('accepts trust domain aliases', async () => {
      const port = await serve(await start(peerAuthentication('STRICT'), { trustDomainAliases: ['old.example'] }));
      const seen = body(await mtls(port, ca.issue({ trustDomain: 'old.example', namespace: 'legacy', serviceAccount: 'app' })));
      expect(seen.identity?.spiffeId).toBe('spiffe://old.example/ns/legacy/sa/app');
    });

    it('refuses TLS and plaintext alike when the workload has no certificates', async () => {
      const port = await serve(await start(peerAuthentication('STRICT'), { certificates: false }));
      expect((await mtls(port)).ok).toBe(false);
      expect((await send(port, false)).ok).toBe(false);
      expect(rejections.map((e) => e.reason)).toEqual(['no-workload-certificate', 'plaintext']);
    });
  });

  it('PERMISSIVE serves TLS and plaintext on one port, with an identity for mTLS only', async () => {
    const port = await serve(await start(peerAuthentication('PERMISSIVE')));
    const tls = body(await mtls(port));
    expect(tls).toMatchObject({ encrypted: true, identity: { serviceAccount: 'frontend' } });
    const plain = body(await send(port, false, { method: 'POST', body: 'x'.repeat(200_000) }));
    expect(plain).toEqual({ encrypted: false, httpVersion: '1.1' });
    // mTLS is still mutual: a TLS client must present a valid certificate.
    expect((await mtls(port, null)).ok).toBe(false);
    expect(await inboundCount('mtls')).toBe(1);
    expect(await inboundCount('plaintext')).toBe(1);
    expect(await inboundCount('rejected', 'no-certificate')).toBe(1);
  });

  it('DISABLE serves plaintext and does not speak TLS', async () => {
    const port = await serve(await start(peerAuthentication('DISABLE')));
    expect(body(await send(port, false))).toEqual({ encrypted: false, httpVersion: '1.1' });
    const tls = await mtls(port);
    expect(tls.ok).toBe(false);
  });

  it('with no PeerAuthentication at all the port is PERMISSIVE, as in Istio', async () => {
    const port = await serve(await start(''));
    expect(body(await mtls(port)).encrypted).toBe(true);
    expect(body(await send(port, false)).encrypted).toBe(false);
  });

  describe('HTTP/2', () => {
    function h2Get(
      port: number,
      tls: boolean,
      identity: IssuedCertificate | undefined = client,
    ): Promise<{ encrypted: boolean; httpVersion: string; identity?: Record<string, string> } | string> {
      return new Promise((resolve) => {
        const session = http2Connect(
          `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
          tls ? { ca: ca.certificatePem, ...(identity ? { cert: identity.chainPem, key: identity.keyPem } : {}) } : {},
        );
        session.on('error', (e) => resolve(`error: ${e.message}`));
        const stream = session.request({ ':path': '/' });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => (text += d));
        stream.on('end', () => {
          session.close();
          resolve(text ? (JSON.parse(text) as { encrypted: boolean; httpVersion: string }) : 'error: empty');
        });
        stream.on('error', (e) => {
          session.destroy();
          resolve(`error: ${e.message}`);
        });
        stream.end();
      });
    }

    it('serves h2 over mTLS with the identity, and h2c in plaintext under PERMISSIVE', async () => {
      const m = await start(peerAuthentication('PERMISSIVE'));
      const server = m.createHttp2Server(whoCalled);
      servers.push(server);
      const port = await listen(server);
      expect(await h2Get(port, true)).toMatchObject({ encrypted: true, httpVersion: '2.0', identity: { serviceAccount: 'frontend' } });
      expect(await h2Get(port, false)).toEqual({ encrypted: false, httpVersion: '2.0' });
    });

    it('STRICT refuses h2c; allowHTTP1 serves HTTP/1.1 over mTLS too', async () => {
      const m = await start(peerAuthentication('STRICT'));
      const server = m.createHttp2Server(whoCalled, { allowHTTP1: true });
      servers.push(server);
      const port = await listen(server);
      expect(await h2Get(port, false)).toMatch(/^error/);
      expect(body(await mtls(port))).toMatchObject({ encrypted: true, httpVersion: '1.1', identity: { serviceAccount: 'frontend' } });
      expect(await h2Get(port, true)).toMatchObject({ httpVersion: '2.0', identity: { serviceAccount: 'frontend' } });
      expect(rejections.map((e) => e.reason)).toEqual(['plaintext']);
    });

    it('with allowHTTP1, h2c and plaintext HTTP/1.1 share a PERMISSIVE or DISABLE port', async () => {
      for (const mode of ['PERMISSIVE', 'DISABLE']) {
        const m = await start(peerAuthentication(mode));
        const server = m.createHttp2Server(whoCalled, { allowHTTP1: true });
        const port = await listen(server);
        expect(await h2Get(port, false)).toEqual({ encrypted: false, httpVersion: '2.0' });
        expect(body(await send(port, false))).toEqual({ encrypted: false, httpVersion: '1.1' });
        await closeServer(server);
        await m.close();
        mesh = undefined;
      }
    });
  });

  it('secures a server the application created, and refuses a TLS server that does not ask for client certificates', async () => {
    const m = await start(peerAuthentication('STRICT'));
    const own = m.secureServer(createHttpServer(whoCalled));
    servers.push(own);
    const port = await listen(own);
    expect(body(await mtls(port)).identity?.serviceAccount).toBe('frontend');
    expect((await send(port, false)).ok).toBe(false);
    expect(() => m.secureServer(own)).toThrow(SecurityOptionError);
    expect(() => m.secureServer(createHttpsServer())).toThrow(/does not request client certificates: create it with mesh\.tlsOptions\(\)/);
  });

  describe('a connection that says nothing', () => {
    /** Opens a connection, writes `first` (if any), and resolves when the server closes it. */
    function silent(port: number, first?: Buffer): { closed: Promise<string>; socket: ReturnType<typeof netConnect> } {
      const socket = netConnect({ host: '127.0.0.1', port }, () => {
        if (first) socket.write(first);
      });
      let received = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => (received += d));
      socket.on('error', () => undefined);
      return { socket, closed: new Promise((resolve) => socket.on('close', () => resolve(received))) };
    }

    it('is closed under STRICT after the detection timeout, also in the middle of a TLS handshake', async () => {
      const m = await start(peerAuthentication('STRICT'));
      const server = m.createServer(whoCalled, { detectionTimeoutMs: 100 });
      servers.push(server);
      const port = await listen(server);
      expect(await silent(port).closed).toBe('');
      expect(await silent(port, Buffer.from([0x16, 0x03, 0x01])).closed).toBe('');
      expect(rejections.map((e) => [e.reason, e.message.replace(/.*\): /, '')])).toEqual([
        ['timeout', 'no data within 100 ms'],
        ['timeout', 'no completed TLS handshake within 100 ms'],
      ]);
    });

    it('carries on as plaintext under PERMISSIVE after the detection timeout, as Istio does', async () => {
      const m = await start(peerAuthentication('PERMISSIVE'));
      const server = m.createServer(whoCalled, { detectionTimeoutMs: 100 });
      servers.push(server);
      const port = await listen(server);
      const { socket, closed } = silent(port);
      await vi.waitFor(async () => expect(await inboundCount('plaintext')).toBe(1), { timeout: 5000, interval: 20 });
      socket.end('GET / HTTP/1.1\r\nhost: reviews\r\nconnection: close\r\n\r\n');
      const answer = await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK/);
      expect(answer).toContain('{"encrypted":false,"httpVersion":"1.1"}');
    });
  });

  it("works as Fastify's serverFactory and with an Express-style app handler", async () => {
    const m = await start(peerAuthentication('STRICT'));
    // Fastify calls serverFactory(handler, options) and then listen()s on what it returns.
    const serverFactory = (handler: (req: IncomingMessage, res: ServerResponse) => void) => m.createServer(handler);
    const app = Object.assign((req: IncomingMessage, res: ServerResponse) => whoCalled(req, res), { use: () => undefined });
    const server = serverFactory(app);
    servers.push(server);
    const port = await listen(server);
    expect(body(await mtls(port)).identity?.principal).toBe('cluster.local/ns/shop/sa/frontend');
  });
});
