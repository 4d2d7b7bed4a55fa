import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import type { AdminServer, InspectedCluster, MeshInspection } from '../../src/inspect/public.js';
import { AdminOptionError } from '../../src/index.js';
import { runCli } from '../../src/cli/run-cli.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';

let pods: Pods;
let mesh: Mesh;
let admin: AdminServer;
const FQDN = 'reviews.shop.svc.cluster.local';

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
  mesh = await meshFromYaml(
    `
${reviewsServiceEntry(pods.port, ['127.0.0.2', '127.0.0.3'])}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: LEAST_REQUEST } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: by-path
    match: [{ uri: { prefix: /api } }]
    route: [{ destination: { host: reviews } }]
`,
    { namespace: 'shop', dns: false },
  );
  admin = await mesh.serveAdmin({ port: 0 });
});
afterAll(async () => {
  await mesh?.close();
  await pods?.close();
});

async function get(path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`${admin.url}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

async function cli(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('admin server', () => {
  it('listens on 127.0.0.1 by default', () => {
    expect(admin.host).toBe('127.0.0.1');
    expect(admin.url).toBe(`http://127.0.0.1:${admin.port}`);
  });

  it('serves mesh.inspect() at /config_dump as JSON', async () => {
    const r = await get('/config_dump');
    expect(r.status).toBe(200);
    expect(r.type).toMatch(/^application\/json/);
    const view = JSON.parse(r.body) as MeshInspection;
    expect(view.routes.map((t) => t.host)).toEqual([FQDN]);
    expect(view.clusters.map((c) => c.name)).toEqual([`outbound|${pods.port}||${FQDN}`]);
  });

  it('serves /clusters as a table for people and as JSON with ?format=json', async () => {
    const text = await get('/clusters');
    expect(text.status).toBe(200);
    expect(text.type).toMatch(/^text\/plain/);
    const [header, row] = text.body.trimEnd().split('\n');
    expect(header!.split(/\s{2,}/)).toEqual(['SERVICE FQDN', 'PORT', 'SUBSET', 'DISCOVERY', 'LB', 'HEALTHY', 'IN-FLIGHT', 'DESTINATION RULE']);
    expect(row!.split(/\s{2,}/)).toEqual([FQDN, String(pods.port), '-', 'STATIC', 'LEAST_REQUEST', '2/2', '0', 'reviews.shop']);

    const json = await get('/clusters?format=json');
    expect(json.type).toMatch(/^application\/json/);
    const clusters = JSON.parse(json.body) as InspectedCluster[];
    expect(clusters).toEqual([expect.objectContaining({ host: FQDN, port: pods.port, policy: expect.objectContaining({ loadBalancer: 'LEAST_REQUEST' }) })]);
  });

  it('serves /routes, /endpoints, /config and /stats', async () => {
    const routes = await get('/routes');
    expect(routes.body).toMatch(/^HOST\s+VIRTUAL SERVICE\s+ROUTE\s+MATCH\s+DESTINATIONS\n/);
    expect(
      routes.body
        .trimEnd()
        .split('\n')[1]!
        .split(/\s{2,}/),
    ).toEqual([FQDN, 'reviews.shop', 'by-path', 'uri prefix "/api"', `${FQDN} 100%`]);

    const endpoints = await get('/endpoints');
    expect(
      endpoints.body
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s{2,}/).slice(0, 3)),
    ).toEqual([
      [`127.0.0.2:${pods.port}`, 'HEALTHY', `outbound|${pods.port}||${FQDN}`],
      [`127.0.0.3:${pods.port}`, 'HEALTHY', `outbound|${pods.port}||${FQDN}`],
    ]);

    const config = await get('/config');
    expect(config.body).toMatch(/^snapshot 1 accepted .*, namespace shop\n/);
    expect(config.body).toContain('resources: ServiceEntry 1, DestinationRule 1, VirtualService 1');

    const stats = await get('/stats');
    expect(stats.body).toContain(`cluster.outbound|${pods.port}||${FQDN}.membership_healthy: 2\n`);
    expect(stats.body).toContain('config.snapshot_version: 1\n');
    const statsJson = JSON.parse((await get('/stats?format=json')).body) as { stats: { name: string; value: number }[] };
    expect(statsJson.stats).toContainEqual({ name: `cluster.outbound|${pods.port}||${FQDN}.outlier_ejected`, value: 0 });
  });

  it('answers /ready with LIVE', async () => {
    expect(await get('/ready')).toMatchObject({ status: 200, body: 'LIVE\n' });
  });

  it('answers an unknown path with 404 and the list of paths', async () => {
    const r = await get('/nope');
    expect(r.status).toBe(404);
    expect(r.body).toContain('no admin path /nope');
    for (const path of ['/config_dump', '/clusters', '/routes', '/endpoints', '/config', '/stats', '/ready']) expect(r.body).toContain(path);
  });

  it('refuses writes: the admin interface is read-only', async () => {
    const res = await fetch(`${admin.url}/clusters`, { method: 'POST', body: 'x' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('refuses a non-loopback host unless allowRemote is set, saying why', async () => {
    const error = await mesh.serveAdmin({ port: 0, host: '0.0.0.0' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AdminOptionError);
    expect((error as AdminOptionError).code).toBe('ERR_MESH_ADMIN_OPTION');
    expect((error as Error).message).toMatch(/host "0.0.0.0" is not a loopback address.*no authentication.*allowRemote: true/s);
    const remote = await mesh.serveAdmin({ port: 0, host: '0.0.0.0', allowRemote: true });
    try {
      expect((await fetch(`http://127.0.0.1:${remote.port}/ready`)).status).toBe(200);
    } finally {
      await remote.close();
    }
  });

  it('serves the same handler inside an application server', async () => {
    const server = createServer(mesh.adminHandler());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/routes?format=json`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as { host: string }[]).map((t) => t.host)).toEqual([FQDN]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('sidecarless inspect', () => {
  it('prints the clusters table from a running admin server', async () => {
    const r = await cli('inspect', '--url', admin.url);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^SERVICE FQDN\s+PORT\s+SUBSET/);
    expect(r.stdout).toContain(FQDN);
  });

  it('prints routes, endpoints and config, and JSON with --format json', async () => {
    expect((await cli('inspect', '--url', admin.url, 'routes')).stdout).toContain('by-path');
    expect((await cli('inspect', '--url', admin.url, 'endpoints')).stdout).toContain(`127.0.0.3:${pods.port}  HEALTHY`);
    expect((await cli('inspect', '--url', admin.url, 'config')).stdout).toMatch(/^snapshot 1 accepted/);
    const json = await cli('inspect', '--url', admin.url, '--format', 'json', 'clusters');
    expect((JSON.parse(json.stdout) as InspectedCluster[]).map((c) => c.host)).toEqual([FQDN]);
    const dump = await cli('inspect', '--url', admin.url, 'dump');
    expect((JSON.parse(dump.stdout) as MeshInspection).config.snapshotVersion).toBe(1);
  });

  it('says clearly that nothing answers at the URL', async () => {
    // A port that was just free: nothing listens on it now.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const r = await cli('inspect', '--url', `http://127.0.0.1:${port}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`nothing answers at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(r.stderr).toContain('mesh.serveAdmin()');
  });

  it('rejects an unknown view with a usage error', async () => {
    const r = await cli('inspect', 'listeners');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown view "listeners"');
  });
});

describe('admin server and the mesh lifetime', () => {
  it('answers /ready with 503 once the mesh is closed, and closes its own server with the mesh', async () => {
    const own = await meshFromYaml('', { namespace: 'shop', dns: false });
    const served = await own.serveAdmin({ port: 0 });
    const handler = own.adminHandler();
    const app = createServer(handler);
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    try {
      const appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
      expect((await fetch(`${served.url}/ready`)).status).toBe(200);
      await own.close();
      const after = await fetch(`${appUrl}/ready`);
      expect([after.status, await after.text()]).toEqual([503, 'closed\n']);
      const refused = await fetch(`${served.url}/ready`).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(TypeError);
    } finally {
      app.closeAllConnections();
      await new Promise((r) => app.close(r));
    }
  });
});
