import { once } from 'node:events';
import type { Server } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Mesh, MeshLogger } from '../../src/index.js';
import { createMesh, MESH_LOG_EVENTS } from '../../src/index.js';
import type { CertificateBundle } from '../../src/security/certificate-bundle.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import type { CertificateError } from '../../src/security/errors.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import type { ClientResult } from '../helpers/mtls-client.js';
import { send } from '../helpers/mtls-client.js';
import { OtelHarness } from '../helpers/otel.js';
import { SecretVolume } from '../helpers/secret-volume.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const STRICT = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
`;

describe('certificate rotation while traffic flows', () => {
  const ca = DevCa.create();
  const client = ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });
  const serverCert = (version: string, hoursLeft = 24): IssuedCertificate =>
    ca.issue({ namespace: 'shop', serviceAccount: `reviews-${version}`, ips: ['127.0.0.1'], notAfter: new Date(Date.now() + hoursLeft * 3_600_000) });
  let dir: string;
  let volume: SecretVolume;
  let mesh: Mesh;
  let server: Server;
  let port: number;
  let otel: OtelHarness;
  let logged: { level: string; obj: Record<string, unknown>; msg: string }[];

  beforeEach(async () => {
    logged = [];
    const log = (level: string) => (obj: object, msg: string) => logged.push({ level, obj: obj as Record<string, unknown>, msg });
    const logger: MeshLogger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
    otel = new OtelHarness({ tracing: false });
    dir = await makeTempDir();
    volume = new SecretVolume(dir);
    volume.writeCertificate('istio', serverCert('v1'));
    mesh = await createMesh({
      namespace: 'shop',
      config: docs(STRICT),
      watch: false,
      dns: false,
      certificates: { directory: dir, debounceMs: 10, pollIntervalMs: 100 },
      logger,
    });
    server = mesh.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await mesh.close();
    await otel.shutdown();
    await removeTempDir(dir);
  });

  const call = () => send(port, true, { ca: ca.certificatePem, identity: client });

  /** Clients making requests over new connections, back to back, until stopped. */
  function traffic(clients: number): { stop: () => Promise<ClientResult[]> } {
    let running = true;
    const results: ClientResult[] = [];
    const loops = Array.from({ length: clients }, async () => {
      while (running) results.push(await call());
    });
    return {
      stop: async () => {
        running = false;
        await Promise.all(loops);
        return results;
      },
    };
  }

  it('swapping ..data under load: no failed request, new connections get the new certificate', async () => {
    const load = traffic(4);
    const versions = ['v2', 'v3', 'v4'].map((v) => serverCert(v));
    for (const next of versions) {
      const rotated = once(mesh, 'certificateRotated');
      volume.writeCertificate('istio', next);
      const [bundle] = (await rotated) as [CertificateBundle];
      expect(bundle.fingerprint).toBe(next.certificate.fingerprint256);
      const after = await call();
      expect(after.ok && after.serverFingerprint).toBe(next.certificate.fingerprint256);
    }
    const results = await load.stop();
    const certificateLines = logged.filter((l) => String(l.obj.event).startsWith('certificate.'));
    expect(certificateLines.map((l) => [l.obj.event, l.obj.rotated])).toEqual([
      ['certificate.rotated', false],
      ['certificate.rotated', true],
      ['certificate.rotated', true],
      ['certificate.rotated', true],
    ]);
    for (const line of logged) expect(MESH_LOG_EVENTS).toContain(line.obj.event);
    const failed = results.filter((r) => !r.ok);
    expect(failed).toEqual([]);
    expect(results.length).toBeGreaterThan(versions.length);
    expect(new Set(results.map((r) => r.ok && r.serverFingerprint)).size).toBeGreaterThanOrEqual(2);
  });

  it('a new certificate with a mismatched key is refused with the error; the old pair keeps serving', async () => {
    const v1 = await call();
    const rejected = once(mesh, 'certificateRejected');
    const load = traffic(2);
    volume.writeCertificate('istio', serverCert('v2'), { key: serverCert('other').keyPem });
    const [error] = (await rejected) as [CertificateError];
    expect(error.code).toBe('ERR_MESH_CERTIFICATE');
    expect(error.problem).toBe('key-mismatch');
    expect(error.message).toContain(`${dir}/key.pem: the private key does not belong to the certificate in ${dir}/cert-chain.pem`);
    const after = await call();
    expect(after.ok && after.serverFingerprint).toBe(v1.ok && v1.serverFingerprint);
    expect(mesh.certificates?.lastError?.problem).toBe('key-mismatch');
    const results = await load.stop();
    expect(results.filter((r) => !r.ok)).toEqual([]);
    const refusal = logged.find((l) => l.obj.event === 'certificate.rejected');
    expect(refusal).toMatchObject({ level: 'error', obj: { code: 'ERR_MESH_CERTIFICATE', problem: 'key-mismatch', file: `${dir}/key.pem` } });
    expect(refusal?.msg).toMatch(/^workload certificates refused, the ones in use stay: /);
    const rotations = await otel.metric('sidecarless.certificate.rotations');
    expect(rotations.find((p) => p.attributes['sidecarless.certificate.outcome'] === 'rejected')?.value).toBe(1);
    expect(rotations.find((p) => p.attributes['sidecarless.certificate.outcome'] === 'accepted')?.value).toBe(1);
    expect(rotations.find((p) => p.attributes['sidecarless.certificate.problem'] === 'key-mismatch')?.value).toBe(1);
  });

  it('existing connections drain on the certificate they were made with', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: ca.certificatePem, cert: client.chainPem, key: client.keyPem });
    const viaAgent = () =>
      new Promise<{ fingerprint: string; reused: boolean }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, agent }, (res) => {
          const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
          res.resume();
          res.on('end', () => resolve({ fingerprint, reused: req.reusedSocket }));
        });
        req.on('error', reject);
        req.end();
      });
    const first = await viaAgent();
    const next = serverCert('v2');
    const rotated = once(mesh, 'certificateRotated');
    volume.writeCertificate('istio', next);
    await rotated;
    const kept = await viaAgent();
    expect(kept).toEqual({ fingerprint: first.fingerprint, reused: true });
    const fresh = await call();
    expect(fresh.ok && fresh.serverFingerprint).toBe(next.certificate.fingerprint256);
    agent.destroy();
  });

  it('reports seconds to expiry as a gauge, and an event when the certificate in use is near expiry', async () => {
    const points = await otel.metric('sidecarless.certificate.expiry');
    expect(points).toHaveLength(1);
    expect(points[0]?.attributes).toEqual({
      'sidecarless.certificate.source': `istio:${dir}`,
      'sidecarless.certificate.identity': 'spiffe://cluster.local/ns/shop/sa/reviews-v1',
    });
    expect(points[0]?.value as number).toBeGreaterThan(23 * 3600);
    expect(points[0]?.value as number).toBeLessThanOrEqual(24 * 3600);

    // A certificate with a fifth of its lifetime left (issued 5 min ago, 1 min left) raises the event.
    const expiring = once(mesh, 'certificateExpiring');
    const short = ca.issue({ serviceAccount: 'short', ips: ['127.0.0.1'], notBefore: new Date(Date.now() - 300_000), notAfter: new Date(Date.now() + 60_000) });
    volume.writeCertificate('istio', short);
    const [bundle, secondsLeft] = (await expiring) as [CertificateBundle, number];
    expect(bundle.fingerprint).toBe(short.certificate.fingerprint256);
    expect(secondsLeft).toBeGreaterThan(0);
    expect(secondsLeft).toBeLessThanOrEqual(60);
    const after = await otel.metric('sidecarless.certificate.expiry');
    const now = after.find((p) => p.attributes['sidecarless.certificate.identity'] === 'spiffe://cluster.local/ns/default/sa/short');
    expect(now?.value as number).toBeLessThanOrEqual(60);
  });
});
