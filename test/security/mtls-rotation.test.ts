// Connections are pooled per endpoint and TLS identity: after a rotation of the workload
// certificate (or a DestinationRule change) no request rides a connection made under other
// credentials; the new ones present the new certificate, asserted at the server. And certificates
// rotate on both sides while requests flow, without one failing.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh, peerIdentity } from '../../src/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { MemoryCertificateSource } from '../helpers/memory-certificates.js';
import type { MtlsPodReply } from '../helpers/mesh-tls-pod.js';
import { MeshTlsPod } from '../helpers/mesh-tls-pod.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';

const HOST = 'reviews.shop.svc.cluster.local';
const ca = DevCa.create();
const frontend = (): IssuedCertificate => ca.issue({ namespace: 'shop', serviceAccount: 'frontend' });

let pod: MeshTlsPod;
const closers: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pod = await MeshTlsPod.start('127.0.0.2', { identity: ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }) });
});
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(async () => {
  await pod.close();
});

function config(port: number, tls = '{ mode: ISTIO_MUTUAL }', policy = ''): string {
  return `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 9080, name: http, protocol: HTTP, targetPort: ${port} }]
  endpoints: [{ address: 127.0.0.${port === pod.port ? 2 : 1} }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: ${HOST}
  trafficPolicy: { tls: ${tls}${policy} }
`;
}

async function clientMesh(source: MemoryCertificateSource, config: PushSource): Promise<Mesh> {
  const mesh = await createMesh({ namespace: 'shop', watch: false, dns: false, sources: [config], certificates: { source, debounceMs: 0 } });
  closers.push(() => mesh.close());
  return mesh;
}

async function call(mesh: Mesh): Promise<MtlsPodReply> {
  const res = await mesh.request(`http://${HOST}:9080/`);
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as MtlsPodReply;
}

describe('a connection pool per endpoint and TLS identity', () => {
  it('after a rotation every request goes on a connection that presented the new certificate', async () => {
    const first = frontend();
    const second = frontend();
    const source = new MemoryCertificateSource(first);
    const mesh = await clientMesh(source, new PushSource(yamlDocs(config(pod.port))));
    const before = await Promise.all(Array.from({ length: 4 }, () => call(mesh)));
    for (const reply of before) expect(pod.connections[reply.connection]?.clientSerial).toBe(first.certificate.serialNumber);
    const oldConnections = new Set(before.map((r) => r.connection));

    source.set(second);
    await mesh.certificates!.reload();
    expect(mesh.certificates!.current?.fingerprint).toBe(second.certificate.fingerprint256);
    const after = await Promise.all(Array.from({ length: 4 }, () => call(mesh)));
    for (const reply of after) {
      expect(oldConnections.has(reply.connection)).toBe(false);
      expect(pod.connections[reply.connection]?.clientSerial).toBe(second.certificate.serialNumber);
    }
  });

  it('a DestinationRule change makes new connections; an unchanged rule keeps them', async () => {
    const source = new MemoryCertificateSource(frontend());
    // One connection per endpoint, so that reuse is certain.
    const oneConnection = ', connectionPool: { tcp: { maxConnections: 1 } }';
    const push = new PushSource(yamlDocs(config(pod.port, undefined, oneConnection)));
    const mesh = await clientMesh(source, push);
    const first = await call(mesh);
    const hellos = pod.hellos.length;
    // Reloads apply asynchronously: each push is followed by the snapshot it makes.
    const applied = (): Promise<unknown> => new Promise((resolve) => mesh.once('snapshot', resolve));
    // The same rule again (a resync): same settings, the connection stays.
    let next = applied();
    push.push(yamlDocs(config(pod.port, undefined, oneConnection)));
    await next;
    expect((await call(mesh)).connection).toBe(first.connection);
    expect(pod.hellos.length).toBe(hellos);
    next = applied();
    push.push(yamlDocs(config(pod.port, '{ mode: ISTIO_MUTUAL, sni: reviews.v2.internal }', oneConnection)));
    await next;
    const changed = await call(mesh);
    expect(changed.connection).not.toBe(first.connection);
    expect(pod.connections[changed.connection]?.servername).toBe('reviews.v2.internal');
  });
});

describe('rotation under load', () => {
  it('both sides rotate while requests flow: not one request fails, and new connections carry the new certificates', async () => {
    const serverSource = new MemoryCertificateSource(ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }));
    const serverMesh = await createMesh({
      namespace: 'shop',
      watch: false,
      dns: false,
      certificates: { source: serverSource, debounceMs: 0 },
      config: docs(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: shop }
spec: { mtls: { mode: STRICT } }
`),
    });
    closers.push(() => serverMesh.close());
    const seen = new Set<string>();
    const server: Server = serverMesh.createServer((req: IncomingMessage, res: ServerResponse) => {
      const id = peerIdentity(req);
      if (id) seen.add(id.certificate.serialNumber);
      req.resume();
      req.on('end', () => res.end(id?.spiffeId ?? 'anonymous'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const port = (server.address() as AddressInfo).port;

    const clientSource = new MemoryCertificateSource(frontend());
    const mesh = await clientMesh(
      clientSource,
      new PushSource(yamlDocs(config(port, '{ mode: ISTIO_MUTUAL, subjectAltNames: [spiffe://cluster.local/ns/shop/sa/reviews] }'))),
    );
    let ok = 0;
    const failures: string[] = [];
    const worker = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++) {
        try {
          const res = await mesh.request(`http://${HOST}:9080/`, { method: 'POST', body: 'x'.repeat(256) });
          const text = await res.body.text();
          if (res.statusCode === 200 && text === 'spiffe://cluster.local/ns/shop/sa/frontend') ok++;
          else failures.push(`${res.statusCode} ${text}`);
        } catch (error) {
          failures.push(String(error));
        }
      }
    };
    const issuedClients: IssuedCertificate[] = [];
    // Six rounds, each rotating one side while eight workers have requests in flight.
    for (let round = 0; round < 6; round++) {
      const load = Promise.all(Array.from({ length: 8 }, () => worker(25)));
      await new Promise((resolve) => setImmediate(resolve));
      if (round % 2 === 0) {
        const next = frontend();
        issuedClients.push(next);
        clientSource.set(next);
        await mesh.certificates!.reload();
      } else {
        serverSource.set(ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }));
        await serverMesh.certificates!.reload();
      }
      await load;
    }
    expect(failures).toEqual([]);
    expect(ok).toBe(6 * 8 * 25);
    // Every client certificate rotated in was presented on the connections that followed.
    for (const issued of issuedClients) expect(seen.has(issued.certificate.serialNumber)).toBe(true);
  }, 60_000);
});
