import { once } from 'node:events';
import { connect as http2Connect, createSecureServer } from 'node:http2';
import type { Http2SecureServer } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh, peerIdentity } from '../../src/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import type { PeerRejectedError } from '../../src/security/errors.js';
import { SecurityOptionError } from '../../src/security/errors.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { send } from '../helpers/mtls-client.js';
import { SecretVolume } from '../helpers/secret-volume.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const DAY = 86_400_000;
const STRICT = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: shop }
spec: { mtls: { mode: STRICT } }
`;

function whoCalled(req: IncomingMessage, res: ServerResponse): void {
  res.end(JSON.stringify({ caller: peerIdentity(req)?.spiffeId ?? null }));
}

/** Servers that terminate TLS themselves (node:https, createSecureServer, Fastify's `https`), with the mesh's options and checks. */
describe('TLS-terminating servers with mesh.tlsOptions() and mesh.secureServer()', () => {
  const ca = DevCa.create();
  const client = ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });
  const serverCert = (sa: string) => ca.issue({ namespace: 'shop', serviceAccount: sa, ips: ['127.0.0.1'], dnsNames: ['reviews.shop'] });
  let dir: string;
  let volume: SecretVolume;
  let mesh: Mesh;
  let servers: (HttpsServer | Http2SecureServer)[];
  let rejections: PeerRejectedError[];

  beforeEach(async () => {
    dir = await makeTempDir();
    volume = new SecretVolume(dir);
    volume.writeCertificate('kubernetes-tls', serverCert('v1'));
    mesh = await createMesh({
      namespace: 'shop',
      config: docs(STRICT),
      watch: false,
      dns: false,
      certificates: { directory: dir, debounceMs: 10, pollIntervalMs: 100 },
    });
    rejections = [];
    mesh.on('inboundRejected', (e) => rejections.push(e));
    servers = [];
  });
  afterEach(async () => {
    for (const server of servers) {
      if ('closeAllConnections' in server) server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await mesh.close();
    await removeTempDir(dir);
  });

  async function https(): Promise<number> {
    const server = mesh.secureServer(createHttpsServer(mesh.tlsOptions(), whoCalled));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  it('serves mTLS clients with their identity and refuses the rest with precise reasons', async () => {
    const port = await https();
    const ok = await send(port, true, { ca: ca.certificatePem, identity: client });
    expect(ok.ok && JSON.parse(ok.body)).toEqual({ caller: 'spiffe://cluster.local/ns/shop/sa/frontend' });
    const refused = [
      await send(port, true, { ca: ca.certificatePem }),
      await send(port, true, {
        ca: ca.certificatePem,
        identity: ca.issue({ notBefore: new Date(Date.now() - 2 * DAY), notAfter: new Date(Date.now() - DAY) }),
      }),
      await send(port, true, { ca: ca.certificatePem, identity: ca.issue({ trustDomain: 'elsewhere.example' }) }),
      await send(port, true, { ca: ca.certificatePem, identity: DevCa.create().issue() }),
      await send(port, false),
    ];
    expect(refused.map((r) => r.ok)).toEqual([false, false, false, false, false]);
    expect(rejections.map((e) => [e.reason, e.mode])).toEqual([
      ['no-certificate', 'STRICT'],
      ['expired', 'STRICT'],
      ['identity', 'STRICT'],
      ['untrusted', 'STRICT'],
      ['handshake', 'STRICT'],
    ]);
  });

  it('rotates the server certificate for clients with and without SNI', async () => {
    const port = await https();
    const next = serverCert('v2');
    const rotated = once(mesh, 'certificateRotated');
    volume.writeCertificate('kubernetes-tls', next);
    await rotated;
    const byIp = await send(port, true, { ca: ca.certificatePem, identity: client });
    const bySni = await send(port, true, { ca: ca.certificatePem, identity: client, servername: 'reviews.shop' });
    expect(byIp.ok && byIp.serverFingerprint).toBe(next.certificate.fingerprint256);
    expect(bySni.ok && bySni.serverFingerprint).toBe(next.certificate.fingerprint256);
  });

  it('works with http2.createSecureServer', async () => {
    const server = mesh.secureServer(
      createSecureServer(mesh.tlsOptions(), (req, res) => res.end(JSON.stringify({ caller: peerIdentity(req)?.serviceAccount, version: req.httpVersion }))),
    );
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const session = http2Connect(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, {
      ca: ca.certificatePem,
      cert: client.chainPem,
      key: client.keyPem,
    });
    const stream = session.request({ ':path': '/' });
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (text += d));
    await once(stream, 'end');
    session.close();
    expect(JSON.parse(text)).toEqual({ caller: 'frontend', version: '2.0' });
  });

  it('refuses a TLS server that does not request client certificates, and a second securing', async () => {
    const { requestCert: _r, ...withoutClientCerts } = mesh.tlsOptions();
    expect(() => mesh.secureServer(createHttpsServer(withoutClientCerts))).toThrow(SecurityOptionError);
    const server = createHttpsServer(mesh.tlsOptions());
    mesh.secureServer(server);
    expect(() => mesh.secureServer(server)).toThrow(/already secured/);
  });
});
