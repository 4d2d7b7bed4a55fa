import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { Dnsmasq } from '../helpers/dnsmasq.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import { requireSystemTools } from '../helpers/system-tools.js';

requireSystemTools('dnsmasq');

const REVIEWS = 'reviews.shop.svc.cluster.local';

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, stdout: out.join('\n'), stderr: err.join('\n') };
}

describe('sidecarless explain --resolve', () => {
  let dir: string;
  let server: Dnsmasq;

  beforeAll(async () => {
    dir = await makeTempDir('sidecarless-explain-dns-');
    await writeFile(
      join(dir, 'mesh.yaml'),
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [${REVIEWS}]
  location: MESH_INTERNAL
  resolution: DNS
  ports: [{ number: 9080, name: http-web, protocol: HTTP }]
  endpoints: [{ address: ${REVIEWS}, labels: { app: reviews }, weight: 2 }]
`,
    );
    server = await Dnsmasq.start(
      {
        hosts: { [`pod-a.${REVIEWS}`]: ['10.1.0.11'], [`pod-b.${REVIEWS}`]: ['10.1.0.12'], 'ratings.shop.svc.cluster.local': ['10.96.0.7'] },
        srv: [
          { name: `_http-web._tcp.${REVIEWS}`, target: `pod-a.${REVIEWS}`, port: 8080, weight: 50 },
          { name: `_http-web._tcp.${REVIEWS}`, target: `pod-b.${REVIEWS}`, port: 8080, weight: 50 },
        ],
      },
      { ttl: 30 },
    );
  });
  afterAll(async () => {
    await server?.close();
    await removeTempDir(dir);
  });

  it('lists the addresses and target ports DNS gives now, with the entry labels and weights', async () => {
    const r = await run('explain', '-c', dir, '-n', 'shop', '--dns-server', server.server, 'GET', `http://${REVIEWS}:9080/`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // Without resolving, the entry's name is listed as written.
    expect(r.stdout).toContain(`${REVIEWS}:9080  weight 2  app=reviews`);
    expect(r.stdout).toContain(`${REVIEWS} (SRV _http-web._tcp.${REVIEWS}, then A): answered by _http-web._tcp.${REVIEWS}`);
    expect(r.stdout).toContain('resolved endpoints (2):');
    expect(r.stdout).toContain('10.1.0.11:8080  weight 2  app=reviews');
    expect(r.stdout).toContain('10.1.0.12:8080  weight 2  app=reviews');
  });

  it('resolves Kubernetes names no configuration knows, in JSON too', async () => {
    const r = await run('explain', '-c', dir, '-n', 'shop', '--dns-server', server.server, '-o', 'json', 'GET', 'http://ratings.shop:9080/');
    expect(r.code).toBe(0);
    const e = JSON.parse(r.stdout) as { destinations: { resolved?: { names: { query: string; answeredBy: string }[]; endpoints: { key: string }[] } }[] };
    expect(e.destinations[0]?.resolved?.names).toEqual([{ name: 'ratings.shop.svc.cluster.local', query: 'A', answeredBy: 'ratings.shop.svc.cluster.local' }]);
    expect(e.destinations[0]?.resolved?.endpoints.map((x) => x.key)).toEqual(['10.96.0.7:9080']);
  });

  it('says what DNS lacked when a name has no records, and resolves nothing without the flag', async () => {
    const r = await run('explain', '-c', dir, '-n', 'shop', '--dns-server', server.server, 'GET', 'http://nope.shop:9080/');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('nope.shop.svc.cluster.local (A): no records (NXDOMAIN or NODATA)');
    expect(r.stdout).toContain('resolved endpoints: none (no healthy upstream for nope.shop.svc.cluster.local: DNS has no address records');
    const plain = await run('explain', '-c', dir, '-n', 'shop', 'GET', `http://${REVIEWS}:9080/`);
    expect(plain.stdout).not.toContain('DNS now');
  });
});
