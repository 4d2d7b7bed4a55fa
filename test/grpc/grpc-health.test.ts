// grpc.health.v1 on a real grpc-js server, asked by a plain grpc-js client with the messages
// written as protobuf bytes by hand (field 1: the service name; the status as a varint), so the
// test does not share the service's encoder.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, makeGenericClientConstructor, Metadata, Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { Client, ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { addMeshHealthService, meshServerInterceptor } from '../../src/grpc/index.js';
import type { MeshHealth, MeshHealthOptions } from '../../src/grpc/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import type { IssuedCertificate } from '../../src/security/dev-ca/dev-ca.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const raw = (b: Buffer): Buffer => b;
const HEALTH = {
  check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
  watch: {
    path: '/grpc.health.v1.Health/Watch',
    requestStream: false,
    responseStream: true,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};
interface HealthClient extends Client {
  check(request: Buffer, metadata: Metadata, callback: (error: ServiceError | null, reply?: Buffer) => void): unknown;
  watch(request: Buffer, metadata?: Metadata): ClientReadableStream<Buffer>;
}
const HealthClient = makeGenericClientConstructor(HEALTH, 'Health') as unknown as new (
  address: string,
  creds: ReturnType<typeof credentials.createInsecure>,
) => HealthClient;

/** HealthCheckRequest { service: name } as protobuf bytes. */
const request = (service: string): Buffer =>
  service === '' ? Buffer.alloc(0) : Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(service)]), Buffer.from(service)]);
const SERVING = Buffer.from([0x08, 0x01]);
const NOT_SERVING = Buffer.from([0x08, 0x02]);

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

async function serve(mesh: Mesh, options?: MeshHealthOptions): Promise<{ client: HealthClient; health: MeshHealth }> {
  const server = new Server({ interceptors: [meshServerInterceptor(mesh)] });
  const health = addMeshHealthService(server, mesh, options);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.11:0', ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const client = new HealthClient(`127.0.0.11:${port}`, credentials.createInsecure());
  cleanups.push(
    () => client.close(),
    () => server.forceShutdown(),
  );
  return { client, health };
}

function check(client: HealthClient, service: string): Promise<{ reply: Buffer } | { code: number; details: string }> {
  return new Promise((resolve) => {
    client.check(request(service), new Metadata(), (error, reply) => resolve(error ? { code: error.code, details: error.details } : { reply: reply! }));
  });
}

describe('grpc.health.v1 reflecting the mesh', () => {
  it('Check: SERVING for the server and listed services, NOT_FOUND for others, NOT_SERVING for a service set so', async () => {
    const mesh = await meshFromYaml('', { namespace: 'shop', dns: false });
    cleanups.push(() => mesh.close());
    const { client, health } = await serve(mesh, { services: ['test.Echo'] });
    expect(await check(client, '')).toEqual({ reply: SERVING });
    expect(await check(client, 'test.Echo')).toEqual({ reply: SERVING });
    expect(await check(client, 'test.Other')).toEqual({ code: status.NOT_FOUND, details: 'unknown service "test.Other"' });
    health.setServing('test.Echo', false);
    expect(await check(client, 'test.Echo')).toEqual({ reply: NOT_SERVING });
    expect(await check(client, '')).toEqual({ reply: SERVING });
    expect(() => health.setServing('test.Other', true)).toThrow(/unknown service "test.Other"/);
  });

  it('a malformed request is answered INVALID_ARGUMENT', async () => {
    const mesh = await meshFromYaml('', { namespace: 'shop', dns: false });
    cleanups.push(() => mesh.close());
    const { client } = await serve(mesh);
    const outcome = await new Promise<{ code: number }>((resolve) =>
      client.check(Buffer.from([0x0a, 0x09, 0x61]), new Metadata(), (e) => resolve({ code: e?.code ?? 0 })),
    );
    expect(outcome.code).toBe(status.INVALID_ARGUMENT);
  });

  it('Watch: SERVING, then NOT_SERVING as soon as the mesh starts closing', async () => {
    const mesh = await meshFromYaml('', { namespace: 'shop', dns: false });
    const { client } = await serve(mesh);
    const stream = client.watch(request(''));
    const seen: Buffer[] = [];
    stream.on('data', (b: Buffer) => seen.push(b));
    stream.on('error', () => undefined);
    await expect.poll(() => seen.length).toBe(1);
    expect(seen[0]).toEqual(SERVING);
    const closing = mesh.close();
    await expect.poll(() => seen.length).toBe(2);
    expect(seen[1]).toEqual(NOT_SERVING);
    stream.cancel();
    await closing;
  });

  it('NOT_SERVING while the discovered certificates are not valid, SERVING once a valid set is read', async () => {
    const ca = DevCa.create();
    const dir = mkdtempSync(join(tmpdir(), 'grpc-health-'));
    const write = (issued: IssuedCertificate): void => {
      writeFileSync(join(dir, 'cert-chain.pem'), issued.chainPem);
      writeFileSync(join(dir, 'key.pem'), issued.keyPem);
      writeFileSync(join(dir, 'root-cert.pem'), issued.rootPem);
    };
    write(ca.issue({ namespace: 'shop', serviceAccount: 'reviews', notBefore: new Date('2020-01-01T00:00:00Z'), notAfter: new Date('2020-01-02T00:00:00Z') }));
    const saved = process.env['OUTPUT_CERTS'];
    process.env['OUTPUT_CERTS'] = dir;
    cleanups.push(() => {
      if (saved === undefined) delete process.env['OUTPUT_CERTS'];
      else process.env['OUTPUT_CERTS'] = saved;
      rmSync(dir, { recursive: true, force: true });
    });
    // Discovered ($OUTPUT_CERTS), so an expired set is kept as an error rather than refused at start.
    const mesh = await meshFromYaml('', { namespace: 'shop', dns: false });
    cleanups.push(() => mesh.close());
    expect(mesh.certificates?.current).toBeUndefined();
    const { client } = await serve(mesh);
    expect(await check(client, '')).toEqual({ reply: NOT_SERVING });
    write(ca.issue({ namespace: 'shop', serviceAccount: 'reviews' }));
    await mesh.certificates!.reload();
    expect(await check(client, '')).toEqual({ reply: SERVING });
  });
});
