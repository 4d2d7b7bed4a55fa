import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh, MeshLogger } from '../../src/index.js';
import { dnsOptions, get, nextEvent } from '../helpers/dns-mesh.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

let pods: Pods;
let dns: Dnsmasq;
let mesh: Mesh;
const logged: Record<string, unknown>[] = [];
const logger: MeshLogger = {
  debug: (o) => void logged.push(o as Record<string, unknown>),
  info: (o) => void logged.push(o as Record<string, unknown>),
  warn: (o) => void logged.push(o as Record<string, unknown>),
  error: (o) => void logged.push(o as Record<string, unknown>),
};
const REVIEWS = 'reviews.shop.svc.cluster.local';

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  // Only cluster.local is answered: api.example.com is REFUSED, a failing lookup.
  dns = await Dnsmasq.start({ hosts: { [REVIEWS]: ['127.0.0.2', '127.0.0.3'] } }, { ttl: 1, localDomains: ['cluster.local'] });
  mesh = await meshFromYaml(
    `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
`,
    { namespace: 'shop', dns: dnsOptions(dns), logger },
  );
});
afterAll(async () => {
  await mesh?.close();
  await dns?.close();
  await pods?.close();
});

describe('mesh.inspect() with DNS discovery', () => {
  it('shows a Kubernetes service found by DNS: its cluster, endpoints and the watched name', async () => {
    expect((await get(mesh, `http://reviews.shop:${pods.port}/`)).status).toBe(200);
    const view = mesh.inspect();
    const cluster = view.clusters.find((c) => c.host === REVIEWS);
    expect(cluster).toMatchObject({ discovery: 'dns', active: true, port: pods.port });
    expect(cluster!.endpoints.map((e) => [e.address, e.health])).toEqual([
      [`127.0.0.2:${pods.port}`, 'healthy'],
      [`127.0.0.3:${pods.port}`, 'healthy'],
    ]);
    const name = view.dns.find((d) => d.name === REVIEWS);
    expect(name).toMatchObject({ status: 'ok', addresses: [`127.0.0.2:${pods.port}`, `127.0.0.3:${pods.port}`], consecutiveFailures: 0 });
    expect(Date.parse(name!.answeredAt!)).not.toBeNaN();
  });

  it('shows a name whose lookups fail, with the error, and logs dns.failed', async () => {
    const failed = nextEvent(mesh, 'dnsError', (f) => f.name.startsWith('api.example.com'));
    const res = await get(mesh, `http://api.example.com:${pods.port}/`);
    expect(res.status).toBe(503);
    await failed;
    const view = mesh.inspect();
    const name = view.dns.find((d) => d.name.startsWith('api.example.com'));
    expect(name?.status).toBe('failing');
    expect(name?.lastError).toMatch(/REFUSED/);
    expect(name?.consecutiveFailures).toBeGreaterThanOrEqual(1);
    const cluster = view.clusters.find((c) => c.host === 'api.example.com');
    expect(cluster).toMatchObject({ discovery: 'dns', endpoints: [] });
    expect(cluster?.unavailableReason).toMatch(/REFUSED/);
    expect(logged.find((l) => l.event === 'dns.failed')).toMatchObject({ name: expect.stringMatching(/^api\.example\.com/), kept: [] });
  });
});
