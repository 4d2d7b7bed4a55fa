// VirtualService `tls` routes: Istio's validation (pkg/config/validation validateTLSRoute,
// validateTLSMatch, validateSniHost, in its words) and how they compile into the snapshot
// (snapshot.routeFor): which ports are TLS (ServiceEntry protocol, a Kubernetes Service port's
// protocol from discovery), which matches apply to this caller and port, and which route a
// connection's SNI and destination address select.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run-cli.js';
import { routesText } from '../../src/inspect/text-tables.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';
import type { Mesh } from '../../src/index.js';
import { MeshConfigError } from '../../src/index.js';
import type { TlsPortRoutes } from '../../src/routing/tls-route.js';
import { selectTlsRoute, sniScore } from '../../src/routing/tls-route.js';
import { explain, meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { errors, summarize, validateYaml } from './helpers.js';

const vs = (spec: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: api, namespace: shop }
spec:
${spec}`;

const entry = (ports: string, extra = '') => `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: api, namespace: shop }
spec:
  hosts: [api.example.com]
  resolution: STATIC
  ports: ${ports}
  endpoints: [{ address: 127.0.0.3, labels: { version: v1 } }]
${extra}`;

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

async function snapshotOf(yaml: string, options: Parameters<typeof meshFromYaml>[1] = {}) {
  mesh = await meshFromYaml(yaml, { namespace: 'shop', dns: false, ...options });
  return mesh.snapshot;
}

function tls(route: ReturnType<Mesh['snapshot']['routeFor']>): TlsPortRoutes {
  if (route.kind !== 'tls') throw new Error(`expected a TLS port, got ${route.kind}`);
  return route;
}

describe('validation, as istiod', () => {
  const lines = (yaml: string) => summarize(errors(validateYaml(yaml))).map((l) => l.replace(/^error \S+ /, ''));

  it('a tls route needs a match with sniHosts, and a route', () => {
    expect(
      lines(
        vs(`  hosts: [api.example.com]
  tls:
  - match: []
    route: [{ destination: { host: api.example.com } }]
`),
      ),
    ).toContain('spec.tls[0].match: TLS route must have at least one match condition');
    expect(
      lines(
        vs(`  hosts: [api.example.com]
  tls:
  - match: [{ port: 443 }]
    route: [{ destination: { host: api.example.com } }]
`),
      ).join('\n'),
    ).toMatch(/spec\.tls\[0\]\.match\[0\]\.sniHosts/);
    expect(
      lines(
        vs(`  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: [api.example.com] }]
`),
      ),
    ).toContain('spec.tls[0].route: TLS route is required');
  });

  it("sniHosts must be a subset of the VirtualService hosts; wildcards follow Istio's subset rule", () => {
    expect(
      lines(
        vs(`  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: [other.example.com] }]
    route: [{ destination: { host: api.example.com } }]
`),
      ),
    ).toContain(
      'spec.tls[0].match[0].sniHosts[0]: SNI host "other.example.com" is not a compatible subset of any of the virtual service hosts: [api.example.com]',
    );
    expect(
      lines(
        vs(`  hosts: ["*.example.com"]
  tls:
  - match: [{ sniHosts: [login.example.com, "*.example.com", "*.a.example.com"] }]
    route: [{ destination: { host: api.example.com } }]
`),
      ),
    ).toEqual([]);
    expect(
      lines(
        vs(`  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: ["*.example.com"] }]
    route: [{ destination: { host: api.example.com } }]
`),
      ),
    ).toContain('spec.tls[0].match[0].sniHosts[0]: SNI host "*.example.com" is not a compatible subset of any of the virtual service hosts: [api.example.com]');
  });

  it('destinationSubnets and port are checked as istiod does', () => {
    const found = lines(
      vs(`  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: [api.example.com], destinationSubnets: [10.0.0.0/33], port: 70000 }]
    route: [{ destination: { host: api.example.com } }]
`),
    ).join('\n');
    expect(found).toMatch(/spec\.tls\[0\]\.match\[0\]\.destinationSubnets\[0\]/);
    expect(found).toMatch(/spec\.tls\[0\]\.match\[0\]\.port/);
  });

  it('an invalid tls route rejects the whole configuration; the mesh keeps nothing of it', async () => {
    const error = await meshFromYaml(
      `${entry('[{ number: 443, name: https, protocol: HTTPS }]')}---
${vs(`  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: [elsewhere.example.org] }]
    route: [{ destination: { host: api.example.com } }]
`)}`,
      { namespace: 'shop', dns: false },
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(MeshConfigError);
    expect((error as MeshConfigError).message).toContain(
      'VirtualService shop/api: spec.tls[0].match[0].sniHosts[0]: SNI host "elsewhere.example.org" is not a compatible subset',
    );
  });
});

describe('compiled into the snapshot', () => {
  it('a TLS or HTTPS port takes the tls routes, an HTTP port of the same host the http routes', async () => {
    const snapshot =
      await snapshotOf(`${entry('[{ number: 443, name: https, protocol: HTTPS }, { number: 80, name: http, protocol: HTTP }, { number: 9443, name: tls, protocol: tls }]')}---
${vs(`  hosts: [api.example.com]
  http:
  - route: [{ destination: { host: api.example.com } }]
  tls:
  - match: [{ sniHosts: [api.example.com] }]
    route:
    - { destination: { host: api.example.com, port: { number: 9443 } }, weight: 30 }
    - { destination: { host: api.example.com }, weight: 70 }
`)}`);
    const https = tls(snapshot.routeFor('api.example.com', 443));
    expect(https.protocol).toBe('HTTPS');
    expect(https.resource).toEqual({ kind: 'VirtualService', namespace: 'shop', name: 'api' });
    expect(https.routes).toHaveLength(1);
    expect(https.routes[0]!.path).toBe('spec.tls[0]');
    expect(https.routes[0]!.destinations.map((d) => [d.host, d.port, d.share])).toEqual([
      ['api.example.com', 9443, 0.3],
      ['api.example.com', undefined, 0.7],
    ]);
    expect(tls(snapshot.routeFor('api.example.com', 9443)).protocol).toBe('TLS');
    // Compiled once per snapshot: every call gets the same object (the data path memoizes by it).
    expect(snapshot.routeFor('api.example.com', 443)).toBe(https);
    expect(snapshot.routeFor('api.example.com', 80)).toBe(snapshot.routeFor('api.example.com', 80));
    const http = snapshot.routeFor('api.example.com', 80);
    expect(http.kind).toBe('http');
    expect(http.kind === 'http' && http.table?.routes).toHaveLength(1);
  });

  it("a VirtualService with tls routes only leaves the host's HTTP port to the default route", async () => {
    const snapshot = await snapshotOf(`${entry('[{ number: 443, name: https, protocol: HTTPS }, { number: 80, name: http, protocol: HTTP }]')}---
${vs(`  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: [api.example.com] }]
    route: [{ destination: { host: api.example.com } }]
`)}`);
    expect(snapshot.routeFor('api.example.com', 80)).toEqual({ kind: 'http', table: undefined });
    expect(tls(snapshot.routeFor('api.example.com', 443)).routes).toHaveLength(1);
  });

  it('static predicates are decided for this caller and port: port, sourceLabels, sourceNamespace, gateways', async () => {
    const snapshot = await snapshotOf(
      `${entry('[{ number: 443, name: https, protocol: HTTPS }, { number: 8443, name: tls, protocol: TLS }]')}---
${vs(`  hosts: [api.example.com]
  tls:
  - match:
    - { sniHosts: [api.example.com], port: 8443 }
    - { sniHosts: [api.example.com], sourceLabels: { app: other } }
    - { sniHosts: [api.example.com], sourceNamespace: elsewhere }
    - { sniHosts: [api.example.com], gateways: [istio-system/egress] }
    route: [{ destination: { host: api.example.com } }]
`)}`,
      { labels: { app: 'shop' } },
    );
    // Nothing applies on 443: the service itself (no route, no VirtualService).
    const on443 = tls(snapshot.routeFor('api.example.com', 443));
    expect(on443.resource).toBeUndefined();
    expect(on443.routes).toEqual([]);
    expect(tls(snapshot.routeFor('api.example.com', 8443)).routes[0]!.matches).toHaveLength(1);
  });

  it("a Kubernetes Service port's protocol, from discovery, makes it a TLS port", async () => {
    // As istiod, sniHosts are compared with the hosts as written: a short name does not cover its FQDN.
    const snapshot = await snapshotOf(
      vs(`  hosts: [ledger.shop.svc.cluster.local]
  tls:
  - match: [{ sniHosts: [ledger.shop.svc.cluster.local] }]
    route: [{ destination: { host: ledger-v2 } }]
`),
    );
    const ledger = tls(snapshot.routeFor('ledger.shop.svc.cluster.local', 8443, () => 'HTTPS'));
    expect(ledger.routes[0]!.destinations[0]!.host).toBe('ledger-v2.shop.svc.cluster.local');
    expect(snapshot.routeFor('ledger.shop.svc.cluster.local', 8443, () => 'HTTP').kind).toBe('http');
    expect(snapshot.routeFor('ledger.shop.svc.cluster.local', 8443).kind).toBe('http');
  });

  it('tls routes for a host with no TLS or HTTPS port are reported unused (tls-routes-unused)', async () => {
    const snapshot = await snapshotOf(`${entry('[{ number: 80, name: http, protocol: HTTP }]')}---
${vs(`  hosts: [api.example.com]
  http:
  - route: [{ destination: { host: api.example.com } }]
  tls:
  - match: [{ sniHosts: [api.example.com] }]
    route: [{ destination: { host: api.example.com } }]
`)}`);
    expect(snapshot.warnings.filter((w) => w.code === 'tls-routes-unused').map((w) => `${w.path}: ${w.message}`)).toEqual([
      'spec.tls: ServiceEntry shop/api declares no TLS or HTTPS port for "api.example.com" (ports: 80/HTTP); tls routes apply only to those, so they are unused (http routes serve the other ports)',
    ]);
  });

  it('no warning for a wildcard host when an entry under it has a TLS port', async () => {
    const snapshot = await snapshotOf(`${entry('[{ number: 443, name: tls, protocol: TLS }]')}---
${vs(`  hosts: ["*.example.com"]
  tls:
  - match: [{ sniHosts: [api.example.com] }]
    route: [{ destination: { host: api.example.com } }]
`)}`);
    expect(snapshot.warnings.filter((w) => w.code === 'tls-routes-unused')).toEqual([]);
  });

  it('no warning when the host has a TLS port', async () => {
    const snapshot = await snapshotOf(`${entry('[{ number: 443, name: tls, protocol: TLS }]')}---
${vs(`  hosts: [api.example.com]
  tls:
  - match: [{ sniHosts: [api.example.com] }]
    route: [{ destination: { host: api.example.com } }]
`)}`);
    expect(snapshot.warnings.filter((w) => w.code === 'tls-routes-unused')).toEqual([]);
  });
});

describe('selecting a route, as Envoy selects a filter chain', () => {
  it('server names: exact beats the longest wildcard, which beats a shorter one; a wildcard never covers its own suffix', () => {
    expect(sniScore(['login.example.com'], 'login.example.com')).toBeGreaterThan(sniScore(['*.example.com'], 'login.example.com'));
    expect(sniScore(['*.a.example.com'], 'x.a.example.com')).toBeGreaterThan(sniScore(['*.example.com'], 'x.a.example.com'));
    expect(sniScore(['*.example.com'], 'example.com')).toBe(-1);
    expect(sniScore(['*.example.com'], undefined)).toBe(-1);
    expect(sniScore(['API.example.com'.toLowerCase()], 'API.EXAMPLE.COM')).toBeGreaterThan(0);
  });

  it('destinationSubnets: the most specific subnet holding the address wins, before server names; no subnet match, no route', async () => {
    const snapshot = await snapshotOf(`${entry('[{ number: 443, name: tls, protocol: TLS }]', '  addresses: [10.1.2.3]\n')}---
${vs(`  hosts: ["*.example.com"]
  tls:
  - match: [{ sniHosts: [api.example.com] }]
    route: [{ destination: { host: any.example.com } }]
  - match: [{ sniHosts: ["*.example.com"], destinationSubnets: [10.1.0.0/16] }]
    route: [{ destination: { host: wide.example.com } }]
  - match: [{ sniHosts: [api.example.com], destinationSubnets: [10.0.0.0/8] }]
    route: [{ destination: { host: narrow.example.com } }]
`)}`);
    const routes = tls(snapshot.routeFor('api.example.com', 443));
    const pick = (sni: string | undefined, addresses: readonly string[]) => selectTlsRoute(routes.routes, sni, addresses)?.destinations[0]?.host;
    expect(routes.addresses).toEqual(['10.1.2.3']);
    // 10.1.0.0/16 is more specific than 10.0.0.0/8, whatever the server name.
    expect(pick('api.example.com', routes.addresses)).toBe('wide.example.com');
    // Within the /16 level, a name it does not cover finds nothing (Envoy does not fall back).
    expect(pick('api.other.org', routes.addresses)).toBeUndefined();
    expect(pick('api.example.com', ['10.9.9.9'])).toBe('narrow.example.com');
    expect(pick('api.example.com', ['192.168.1.1'])).toBe('any.example.com');
    expect(pick(undefined, ['192.168.1.1'])).toBeUndefined();
  });
});

describe('explain and inspect show the tls routes', () => {
  const config = `${entry('[{ number: 443, name: https, protocol: HTTPS }]')}---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: api, namespace: shop }
spec:
  host: api.example.com
  subsets: [{ name: v1, labels: { version: v1 } }]
---
${vs(`  hosts: [api.example.com]
  http:
  - directResponse: { status: 418 }
  tls:
  - match: [{ sniHosts: [api.example.com], port: 443 }]
    route:
    - { destination: { host: api.example.com, subset: v1 }, weight: 90 }
    - { destination: { host: api.example.com, subset: v2 }, weight: 10 }
`)}`;

  it('explain: the tls route the SNI selects, its destinations and endpoints; no http route, timeout or retry', async () => {
    await snapshotOf(config);
    const e = explain(mesh!, 'GET', 'https://api.example.com/');
    expect(e.route).toMatchObject({ path: 'spec.tls[0]', resource: { kind: 'VirtualService', name: 'api' } });
    expect(e.matchedConditions).toEqual(['sni api.example.com AND port 443']);
    expect(e.destinations.map((d) => `${d.host} ${d.subset} ${d.percent}% ${d.endpoints.map((p) => p.key).join(',')}`)).toEqual([
      'api.example.com v1 90% 127.0.0.3:443',
      'api.example.com v2 10% ',
    ]);
    expect(e.directResponse).toBeUndefined();
    expect(e.retries).toMatchObject({ attempts: 0 });
    expect(e.outcome).toEqual([expect.stringContaining('subset "v2" of api.example.com is not defined')]);
    expect(e.notes[0]).toContain('port 443 of api.example.com is an HTTPS port: routed by SNI');
  });

  it('explain: plaintext is refused', async () => {
    await snapshotOf(config);
    const e = explain(mesh!, 'GET', 'http://api.example.com:443/');
    expect(e.outcome).toEqual([expect.stringContaining('TlsPortPlaintextError (ERR_MESH_TLS_PORT_PLAINTEXT)')]);
    expect(e.destinations).toEqual([]);
  });

  it('sidecarless explain (the CLI) prints the tls route, its match and destinations', async () => {
    const dir = await makeTempDir();
    try {
      await writeFile(join(dir, 'mesh.yaml'), config);
      const out: string[] = [];
      const code = await runCli(['explain', '-c', dir, '-n', 'shop', 'GET', 'https://api.example.com/'], { out: (t) => out.push(t), err: (t) => out.push(t) });
      const text = out.join('\n');
      expect(code).toBe(0);
      expect(text).toContain('route:           spec.tls[0] of VirtualService shop/api');
      expect(text).toContain('matched on:      sni api.example.com AND port 443');
      expect(text).toContain('90.0%  api.example.com:443 subset v1');
      expect(text).toContain('note: port 443 of api.example.com is an HTTPS port: routed by SNI');
      expect(text).not.toContain('418');
    } finally {
      await removeTempDir(dir);
    }
  });

  it("inspect: the host's table lists its tls routes as written", async () => {
    await snapshotOf(config);
    const table = mesh!.inspect().routes.find((t) => t.host === 'api.example.com')!;
    expect(table.tlsRoutes).toEqual([
      {
        path: 'spec.tls[0]',
        matches: ['sni api.example.com AND port 443'],
        destinations: [
          { host: 'api.example.com', subset: 'v1', weight: 90, percent: 90 },
          { host: 'api.example.com', subset: 'v2', weight: 10, percent: 10 },
        ],
      },
    ]);
    expect(routesText(mesh!.inspect().routes)).toMatch(
      /api\.example\.com +api\.shop +tls#0 +sni api\.example\.com AND port 443 +api\.example\.com\|v1 90%, api\.example\.com\|v2 10%/,
    );
  });
});
