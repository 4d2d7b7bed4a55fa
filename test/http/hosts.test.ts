import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { UnknownHostError } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';

let pods: Pods;
/** A server outside the mesh, on 127.0.0.1. */
let outside: Pods;
let port: number;
let outsidePort: number;
let mesh: Mesh;

const services = (p: number) => `
${reviewsServiceEntry(p, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: example, namespace: shop }
spec:
  hosts: ["*.example.test"]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{ number: ${p}, name: http, protocol: HTTP }]
  endpoints: [{ address: 127.0.0.4 }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: none-wildcard, namespace: shop }
spec:
  hosts: ["*.none.test"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{ number: ${p}, name: http, protocol: HTTP }]
`;

const registryOnlySidecar = `
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: shop }
spec:
  egress: [{ hosts: ["./*", "istio-system/*"] }]
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  outside = await Pods.start(['127.0.0.1']);
  port = pods.port;
  outsidePort = outside.port;
  mesh = await meshFromYaml(services(port), { namespace: 'shop' });
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
  await outside.close();
});

async function reply(m: Mesh, url: string, headers: Record<string, string> = {}): Promise<PodReply> {
  const res = await m.request(url, { headers });
  expect(res.statusCode).toBe(200);
  return (await res.body.json()) as PodReply;
}

describe('host to service', () => {
  it('reaches the same pods by every name Kubernetes DNS gives a service in the caller namespace', async () => {
    for (const name of ['reviews', 'reviews.shop', 'reviews.shop.svc', 'reviews.shop.svc.cluster.local', 'reviews.shop.svc.cluster.local.', 'REVIEWS.Shop']) {
      const seen = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const r = await reply(mesh, `http://${name}:${port}/x`);
        seen.add(r.pod);
        // The backend sees the name it was called by, as behind a sidecar.
        expect(r.host.toLowerCase()).toBe(`${name}:${port}`.toLowerCase());
      }
      expect([...seen].sort()).toEqual(['127.0.0.2', '127.0.0.3']);
    }
  });

  it('routes any name under a wildcard ServiceEntry with STATIC endpoints to them', async () => {
    for (const name of ['api.example.test', 'deep.api.example.test']) {
      const r = await reply(mesh, `http://${name}:${port}/v1?q=1`);
      expect(r.pod).toBe('127.0.0.4');
      expect(r.host).toBe(`${name}:${port}`);
      expect(r.path).toBe('/v1?q=1');
    }
  });

  it('passes a host no configuration knows (ALLOW_ANY) to its own address, untouched', async () => {
    const r = await reply(mesh, `http://127.0.0.1:${outsidePort}/raw/path?x=1&y=%20`, { 'x-custom': 'kept' });
    expect(r.pod).toBe('127.0.0.1');
    expect(r.host).toBe(`127.0.0.1:${outsidePort}`);
    expect(r.path).toBe('/raw/path?x=1&y=%20');
    expect(r.headers['x-custom']).toBe('kept');
    const viaName = await reply(mesh, `http://localhost:${outsidePort}/by-name`);
    expect(viaName.host).toBe(`localhost:${outsidePort}`);
  });
});

describe('outbound traffic policy REGISTRY_ONLY', () => {
  async function expectUnknown(m: Mesh, url: string): Promise<void> {
    const error = await m.request(url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UnknownHostError);
    expect((error as UnknownHostError).code).toBe('ERR_MESH_UNKNOWN_HOST');
    expect((error as UnknownHostError).host).toBe(new URL(url).hostname);
    // fetch callers get it as the cause of fetch's TypeError.
    const fetchError = await m.fetch(url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((fetchError as { cause?: unknown }).cause).toBeInstanceOf(UnknownHostError);
  }

  it('refuses hosts outside the registry when the mesh option says so, and serves the rest', async () => {
    const strict = await meshFromYaml(services(port), { namespace: 'shop', outboundTrafficPolicy: 'REGISTRY_ONLY' });
    try {
      await expectUnknown(strict, `http://127.0.0.1:${outsidePort}/`);
      await expectUnknown(strict, `http://api.other.test:${port}/`);
      expect((await reply(strict, `http://reviews:${port}/`)).pod).toMatch(/^127\.0\.0\.[23]$/);
      expect((await reply(strict, `http://api.example.test:${port}/`)).pod).toBe('127.0.0.4');
      // A name under a resolution-NONE wildcard is in the registry: it is let through to the name
      // itself (which this machine's DNS does not know), not refused.
      const error = await strict.request(`http://api.none.test:${port}/`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).not.toBeInstanceOf(UnknownHostError);
    } finally {
      await strict.close();
    }
  });

  it('takes REGISTRY_ONLY from the Sidecar of the caller namespace', async () => {
    const strict = await meshFromYaml(services(port) + registryOnlySidecar, { namespace: 'shop' });
    try {
      await expectUnknown(strict, `http://127.0.0.1:${outsidePort}/`);
      expect((await reply(strict, `http://reviews.shop:${port}/`)).pod).toMatch(/^127\.0\.0\.[23]$/);
      // The mesh option wins over the Sidecar.
      const open = await meshFromYaml(services(port) + registryOnlySidecar, { namespace: 'shop', outboundTrafficPolicy: 'ALLOW_ANY' });
      try {
        expect((await reply(open, `http://127.0.0.1:${outsidePort}/`)).pod).toBe('127.0.0.1');
      } finally {
        await open.close();
      }
    } finally {
      await strict.close();
    }
  });
});
