import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import { ConfigStore } from '../../src/config/config-store.js';
import type { RawDocument } from '../../src/index.js';
import type { Snapshot } from '../../src/inspect/public.js';
import { createMesh, MeshConfigError } from '../../src/index.js';
import type { Mesh } from '../../src/index.js';
import { formatLocation } from '../../src/issue.js';
import { explain } from '../helpers/mesh-from-yaml.js';
import { PushSource } from '../helpers/push-source.js';

type Obj = Record<string, unknown>;

const SERVICES = 40;
const meta = (kind: string, name: string, namespace = 'shop') => ({ apiVersion: 'networking.istio.io/v1', kind, metadata: { name, namespace } });

/**
 * A configuration with everything that links resources to each other: ServiceEntries whose
 * endpoints are WorkloadEntries chosen by labels, DestinationRules merged for one host, routes to
 * subsets, VirtualServices that conflict over a host, a delegate, more than a handful of wildcard
 * hosts, and a route to a host nobody declares.
 */
function configuration(): Obj[] {
  const out: Obj[] = [];
  for (let i = 0; i < SERVICES; i++) {
    const name = `svc-${i}`;
    const host = `${name}.shop.svc.cluster.local`;
    const selected = i % 2 === 0;
    out.push({
      ...meta('ServiceEntry', name),
      spec: {
        hosts: [host],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
        ...(selected
          ? { workloadSelector: { labels: { app: name } } }
          : {
              endpoints: [
                { address: `10.1.${i}.1`, labels: { version: 'v1' } },
                { address: `10.1.${i}.2`, labels: { version: 'v2' } },
              ],
            }),
      },
    });
    if (selected) {
      for (const version of ['v1', 'v2']) {
        out.push({
          ...meta('WorkloadEntry', `${name}-${version}`),
          spec: { address: `10.2.${i}.${version === 'v1' ? 1 : 2}`, labels: { app: name, version } },
        });
      }
    }
    out.push({
      ...meta('DestinationRule', name),
      spec: {
        host: name,
        trafficPolicy: { loadBalancer: { simple: 'ROUND_ROBIN' } },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    });
    out.push({
      ...meta('VirtualService', name),
      spec: {
        hosts: [name],
        http: [
          { match: [{ headers: { 'x-canary': { exact: 'yes' } } }], route: [{ destination: { host: name, subset: 'v2' } }] },
          {
            route: [
              { destination: { host: name, subset: 'v1' }, weight: 80 },
              { destination: { host: name, subset: 'v2' }, weight: 20 },
            ],
          },
        ],
      },
    });
  }
  // A second rule for svc-1 (merged: its subset v3 is added), and a VirtualService that loses svc-2.
  out.push({ ...meta('DestinationRule', 'svc-1-extra'), spec: { host: 'svc-1', subsets: [{ name: 'v3', labels: { version: 'v3' } }] } });
  out.push({ ...meta('VirtualService', 'svc-2-late'), spec: { hosts: ['svc-2'], http: [{ route: [{ destination: { host: 'svc-3' } }] }] } });
  // Wildcards: more than a lookup tries one by one.
  for (let w = 0; w < 20; w++) {
    out.push({
      ...meta('ServiceEntry', `wild-${w}`),
      spec: { hosts: [`*.w${w}.example.org`], location: 'MESH_EXTERNAL', resolution: 'NONE', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] },
    });
  }
  out.push({ ...meta('VirtualService', 'wild'), spec: { hosts: ['*.w3.example.org'], http: [{ route: [{ destination: { host: 'api.w3.example.org' } }] }] } });
  // A root with a delegate, and a route to a host nothing declares.
  out.push({
    ...meta('VirtualService', 'front'),
    spec: {
      hosts: ['front.example.com'],
      http: [{ match: [{ uri: { prefix: '/svc' } }], delegate: { name: 'front-child' } }, { route: [{ destination: { host: 'nowhere.example.com' } }] }],
    },
  });
  out.push({
    ...meta('VirtualService', 'front-child'),
    spec: {
      http: [
        { match: [{ uri: { prefix: '/svc/a' } }], route: [{ destination: { host: 'svc-4', subset: 'v2' } }] },
        { route: [{ destination: { host: 'svc-5' } }] },
      ],
    },
  });
  return out;
}

const clone = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** One change to one resource: returns the new list (the others stay the same objects). */
type Change = (objects: readonly Obj[], random: () => number) => Obj[];

/** Changes one resource of `kind` (picked at random among those `which` accepts) in a copy. */
function edit(kind: string, which: (o: Obj & { spec: Obj }) => boolean, change: (o: Obj & { spec: Obj }) => void): Change {
  return (objects, random) => {
    const candidates = objects.flatMap((o, i) => (o['kind'] === kind && which(o as Obj & { spec: Obj }) ? [i] : []));
    const at = candidates[Math.floor(random() * candidates.length)]!;
    const copy = clone(objects[at]!) as Obj & { spec: Obj };
    change(copy);
    return objects.map((o, i) => (i === at ? copy : o));
  };
}

const named = (pattern: RegExp) => (o: Obj) => pattern.test((o['metadata'] as { name: string }).name);
const service = named(/^svc-\d+$/);
const remove =
  (kind: string, which: (o: Obj) => boolean): Change =>
  (objects, random) => {
    const candidates = objects.flatMap((o, i) => (o['kind'] === kind && which(o) ? [i] : []));
    const at = candidates[Math.floor(random() * candidates.length)];
    return objects.filter((_, i) => i !== at);
  };

const CHANGES: Record<string, Change> = {
  'route weights': edit('VirtualService', service, (vs) => {
    const route = (vs.spec['http'] as { route: { weight?: number }[] }[])[1]!.route;
    route[0]!.weight = 30;
    route[1]!.weight = 70;
  }),
  'route to another subset': edit('VirtualService', service, (vs) => {
    (vs.spec['http'] as { route: { destination: { subset: string } }[] }[])[0]!.route[0]!.destination.subset = 'v9';
  }),
  'rule loses a subset': edit('DestinationRule', service, (dr) => {
    dr.spec['subsets'] = ((dr.spec['subsets'] ?? []) as { name: string }[]).filter((s) => s.name !== 'v2');
  }),
  'rule policy': edit('DestinationRule', service, (dr) => {
    dr.spec['trafficPolicy'] = { loadBalancer: { simple: 'LEAST_REQUEST' } };
  }),
  'merged rule': edit('DestinationRule', named(/^svc-1-extra$/), (dr) => {
    dr.spec['subsets'] = [
      { name: 'v2', labels: { version: 'v2' } },
      { name: 'v4', labels: { version: 'v4' } },
    ];
  }),
  'endpoint address': edit(
    'ServiceEntry',
    (se) => Array.isArray(se.spec['endpoints']),
    (se) => {
      (se.spec['endpoints'] as { address: string }[])[0]!.address = '10.9.9.9';
    },
  ),
  'service host': edit('ServiceEntry', service, (se) => {
    se.spec['hosts'] = ['renamed.shop.svc.cluster.local'];
  }),
  'workload labels': edit('WorkloadEntry', named(/-v2$/), (we) => {
    we.spec['labels'] = { app: 'nobody', version: 'v2' };
  }),
  'workload address': edit('WorkloadEntry', named(/-v1$/), (we) => {
    we.spec['address'] = '10.8.8.8';
  }),
  'wildcard host': edit('ServiceEntry', named(/^wild-/), (se) => {
    se.spec['hosts'] = ['*.elsewhere.example.org'];
  }),
  'delegate child': edit('VirtualService', named(/^front-child$/), (vs) => {
    (vs.spec['http'] as { route: { destination: { host: string } }[] }[])[1]!.route[0]!.destination.host = 'svc-6';
  }),
  'conflicting route removed': remove('VirtualService', named(/^svc-2-late$/)),
  'rule removed': remove('DestinationRule', service),
  'service removed': remove('ServiceEntry', service),
  'conflicting route added': (objects, random) => [
    ...objects,
    {
      ...meta('VirtualService', `late-${Math.floor(random() * 1e6)}`),
      spec: { hosts: [`svc-${Math.floor(random() * SERVICES)}`], http: [{ route: [{ destination: { host: 'svc-0' } }] }] },
    },
  ],
};

/** Everything a caller of the snapshot can see, in a comparable form. */
function view(snapshot: Snapshot) {
  const services = [...snapshot.services()];
  const hosts = [...new Set([...services.map((s) => s.host), ...[...snapshot.routeTables()].map(([h]) => h)])].sort();
  return {
    routes: [...snapshot.routeTables()]
      .map(([host, table]) => ({
        host,
        owner: table.resource,
        routes: table.routes.map((r) => ({ path: r.path, resource: r.resource, destinations: r.destinations.map((d) => [d.host, d.subset, d.weight]) })),
      }))
      .sort((a, b) => a.host.localeCompare(b.host)),
    services: services
      .map((s) => ({ host: s.host, source: s.source, ports: s.ports.map((p) => [p.number, p.endpoints.map((e) => `${e.key} ${JSON.stringify(e.labels)}`)]) }))
      .sort((a, b) => a.host.localeCompare(b.host)),
    rules: hosts.map((host) => {
      const rule = snapshot.destinationRule(host);
      return rule && { host, sources: rule.sources, subsets: [...rule.subsets.keys()], policy: rule.trafficPolicy };
    }),
    lookups: ['svc-7.shop.svc.cluster.local', 'api.w3.example.org', 'x.w17.example.org', 'renamed.shop.svc.cluster.local', 'nowhere.example.com'].map(
      (host) => [snapshot.service(host)?.source, snapshot.routeTable(host)?.resource],
    ),
    warnings: snapshot.warnings.map((w) => `${w.code} ${formatLocation(w.location)} ${w.path ?? ''} ${w.message}`).sort(),
  };
}

/** What requests would do: the route each service host's requests take (public `explain`). */
function routing(mesh: Mesh) {
  const urls = [...mesh.snapshot.services()]
    .map((s) => s.host)
    .filter((h) => !h.startsWith('*'))
    .sort()
    .flatMap((h) => [`http://${h}/`, `http://${h}/svc/a`]);
  urls.push('http://front.example.com/svc/a', 'http://front.example.com/svc/b', 'http://front.example.com/', 'http://api.w3.example.org/');
  return urls.map((url) => {
    const e = explain(mesh, 'GET', url, { 'x-canary': 'yes' });
    return [url, e.destinations.map((d) => [d.host, d.subset, Math.round(d.percent), d.destinationRules, d.service])];
  });
}

const toDocs = (objects: readonly Obj[], cache: Map<Obj, RawDocument>): RawDocument[] =>
  objects.map((value) => {
    // Unchanged resources stay the same document objects, as sources deliver them.
    let doc = cache.get(value);
    if (!doc) cache.set(value, (doc = { value, location: { file: `reload.yaml` } }));
    return doc;
  });

let meshes: Mesh[] = [];
afterEach(async () => {
  await Promise.all(meshes.map((m) => m.close()));
  meshes = [];
});

async function meshOf(source: PushSource): Promise<Mesh> {
  const mesh = await createMesh({ namespace: 'shop', sources: [source], dns: false, telemetry: false });
  meshes.push(mesh);
  return mesh;
}

const nextSnapshot = (mesh: Mesh) =>
  new Promise<Snapshot>((resolve, reject) => {
    const accepted = (snapshot: Snapshot) => {
      mesh.off('configRejected', rejected);
      resolve(snapshot);
    };
    const rejected = (error: MeshConfigError) => {
      mesh.off('snapshot', accepted);
      reject(error);
    };
    mesh.once('snapshot', accepted);
    mesh.once('configRejected', rejected);
  });

describe('incremental reload', () => {
  it('after each change to one resource among many, serves what a compile from scratch serves', async () => {
    const random = seededRandom(18);
    const cache = new Map<Obj, RawDocument>();
    let objects = configuration();
    const source = new PushSource(toDocs(objects, cache));
    const mesh = await meshOf(source);
    // The warnings prove the cross-resource findings are in play (and must follow each change).
    expect(mesh.snapshot.warnings.map((w) => w.code)).toEqual(
      expect.arrayContaining(['conflicting-virtual-service', 'conflicting-destination-rule', 'unknown-host']),
    );

    const names = Object.keys(CHANGES);
    for (let round = 0; round < 2 * names.length; round++) {
      const name = round < names.length ? names[round]! : names[Math.floor(random() * names.length)]!;
      objects = CHANGES[name]!(objects, random);
      const applied = nextSnapshot(mesh);
      source.push(toDocs(objects, cache));
      await applied;

      const fresh = await meshOf(new PushSource(toDocs(objects.map(clone), new Map())));
      expect({ change: name, ...view(mesh.snapshot) }).toEqual({ change: name, ...view(fresh.snapshot) });
      expect({ change: name, routing: routing(mesh) }).toEqual({ change: name, routing: routing(fresh) });
      await fresh.close();
      meshes.pop();
    }
  });
});

describe('reload in slices', () => {
  const routes = (count: number, subset: string): Obj[] =>
    Array.from({ length: count }, (_, i) => ({
      ...meta('VirtualService', `vs-${i}`),
      spec: { hosts: [`vs-${i}`], http: [{ route: [{ destination: { host: `vs-${i}`, subset } }] }] },
    }));
  const docsOf = (objects: readonly Obj[]) => objects.map((value, i) => ({ value, location: { file: `push[${i}]` } }));
  const subsetOf = (snapshot: Snapshot | undefined, i: number) => snapshot?.routeTable(`vs-${i}.shop.svc.cluster.local`)?.routes[0]?.destinations[0]?.subset;
  const ctx = { namespace: 'shop', rootNamespace: 'istio-system', clusterDomain: 'cluster.local', workloadLabels: {} };
  const turn = () => new Promise((resolve) => setImmediate(resolve));

  let store: ConfigStore | undefined;
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  /** A store that yields after every step, so a reload of a few hundred documents spans many turns. */
  async function started(objects: readonly Obj[]): Promise<{ store: ConfigStore; source: PushSource; snapshots: Snapshot[]; rejections: MeshConfigError[] }> {
    const source = new PushSource(docsOf(objects));
    store = new ConfigStore([source], ctx, { sliceMs: 0 });
    await store.start();
    const snapshots: Snapshot[] = [];
    const rejections: MeshConfigError[] = [];
    store.on('snapshot', (s) => snapshots.push(s));
    store.on('rejected', (e) => rejections.push(e));
    return { store, source, snapshots, rejections };
  }

  it('serves the snapshot in force between slices, and swaps the new one in whole', async () => {
    const { store, source, snapshots } = await started(routes(300, 'v1'));
    source.push(docsOf(routes(300, 'v2')));
    const seen: string[] = [];
    for (let i = 0; i < 100_000 && snapshots.length === 0; i++) {
      await turn();
      // What a request arriving now would be routed by: never a mix of old and new.
      const first = subsetOf(store.snapshot, 0);
      const last = subsetOf(store.snapshot, 299);
      seen.push(`${store.snapshot?.version} ${first} ${last}`);
    }
    const during = seen.slice(0, -1);
    expect(during.length).toBeGreaterThan(10);
    expect(new Set(during)).toEqual(new Set(['1 v1 v1']));
    expect(seen.at(-1)).toBe('2 v2 v2');
  });

  it('abandons a reload in progress when a newer change arrives, and applies only the newer one', async () => {
    const { store, source, snapshots, rejections } = await started(routes(300, 'v1'));
    source.push(docsOf(routes(300, 'v2')));
    // Let the reload of v2 run for a few slices, then change again.
    for (let i = 0; i < 5; i++) await turn();
    expect(snapshots).toHaveLength(0);
    source.push(docsOf(routes(300, 'v3')));
    await store.settled();
    expect(rejections).toEqual([]);
    expect(snapshots.map((s) => [s.version, subsetOf(s, 0), subsetOf(s, 299)])).toEqual([[2, 'v3', 'v3']]);
  });

  it('an invalid change that supersedes a reload in progress is rejected, and the last good snapshot keeps serving', async () => {
    const { store, source, snapshots, rejections } = await started(routes(300, 'v1'));
    source.push(docsOf(routes(300, 'v2')));
    for (let i = 0; i < 5; i++) await turn();
    const broken = routes(300, 'v3');
    (broken[150]!['spec'] as Obj)['http'] = [{ route: [{ destination: { host: 'vs-150' } }], timeout: 'soon' }];
    source.push(docsOf(broken));
    await store.settled();
    expect(snapshots).toEqual([]);
    expect(rejections).toHaveLength(1);
    expect(rejections[0]).toBeInstanceOf(MeshConfigError);
    expect(rejections[0]!.message).toContain('snapshot 1 keeps serving');
    expect(rejections[0]!.message).toContain('VirtualService shop/vs-150');
    expect(rejections[0]!.message).toContain('spec.http[0].timeout');
    expect([store.snapshot?.version, subsetOf(store.snapshot, 0), subsetOf(store.snapshot, 299)]).toEqual([1, 'v1', 'v1']);

    source.push(docsOf(routes(300, 'v4')));
    await store.settled();
    expect(snapshots.map((s) => [s.version, subsetOf(s, 0), subsetOf(s, 299)])).toEqual([[2, 'v4', 'v4']]);
  });

  it('applies a change delivered by a snapshot listener, or just after it', async () => {
    const { store, source, snapshots } = await started(routes(20, 'v1'));
    store.once('snapshot', () => source.push(docsOf(routes(20, 'v3'))));
    source.push(docsOf(routes(20, 'v2')));
    await store.settled();
    expect(snapshots.map((s) => subsetOf(s, 0))).toEqual(['v2', 'v3']);

    store.once('snapshot', () => queueMicrotask(() => source.push(docsOf(routes(20, 'v5')))));
    source.push(docsOf(routes(20, 'v4')));
    await store.settled();
    for (let i = 0; i < 1_000 && snapshots.length < 4; i++) await turn();
    expect(snapshots.map((s) => subsetOf(s, 0))).toEqual(['v2', 'v3', 'v4', 'v5']);
  });

  it('still applies changes that keep coming faster than a reload completes', async () => {
    const source = new PushSource(docsOf(routes(100, 'v1')));
    store = new ConfigStore([source], ctx, { sliceMs: 0, supersedeForMs: 20 });
    await store.start();
    const snapshots: Snapshot[] = [];
    store.on('snapshot', (s) => snapshots.push(s));
    // The content flips on every turn: no reload finishes between two changes.
    const versions = [docsOf(routes(100, 'v2')), docsOf(routes(100, 'v3'))];
    let pushed = 0;
    while (snapshots.length === 0 && pushed < 100_000) {
      source.push(versions[pushed++ % 2]!);
      await turn();
    }
    expect(snapshots.length).toBeGreaterThan(0);
    // Each applied snapshot is whole content the source held; the last change applies once they stop.
    expect(snapshots.every((s) => ['v2', 'v3'].includes(subsetOf(s, 0)!) && subsetOf(s, 0) === subsetOf(s, 99))).toBe(true);
    await store.settled();
    expect(subsetOf(store.snapshot, 0)).toBe(pushed % 2 === 1 ? 'v2' : 'v3');
  });

  it('stops a reload in progress on close, without a snapshot or a rejection', async () => {
    const { store, source, snapshots, rejections } = await started(routes(300, 'v1'));
    source.push(docsOf(routes(300, 'v2')));
    for (let i = 0; i < 5; i++) await turn();
    await store.close();
    for (let i = 0; i < 20; i++) await turn();
    expect(snapshots).toEqual([]);
    expect(rejections).toEqual([]);
  });
});

describe('large configurations', () => {
  it('picks the most specific wildcard host among many, as among few', async () => {
    const wildcard = (name: string, host: string) => ({
      ...meta('ServiceEntry', name),
      spec: { hosts: [host], location: 'MESH_EXTERNAL', resolution: 'NONE', ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] },
    });
    const nested = [wildcard('any', '*.org'), wildcard('org', '*.example.org'), wildcard('a', '*.a.example.org'), wildcard('b', '*.b.a.example.org')];
    const fillers = Array.from({ length: 40 }, (_, i) => wildcard(`filler-${i}`, `*.f${i}.example.net`));
    const sourceOf = (mesh: Mesh, host: string) => mesh.snapshot.service(host)?.source.name;
    for (const objects of [nested, [...fillers, ...[...nested].reverse()]]) {
      const mesh = await meshOf(new PushSource(objects.map((value, i) => ({ value, location: { file: `w[${i}]` } }))));
      expect(
        ['x.b.a.example.org', 'b.a.example.org', 'x.a.example.org', 'a.example.org', 'example.org', 'x.f7.example.net', 'other.test'].map((h) =>
          sourceOf(mesh, h),
        ),
      ).toEqual(['b', 'a', 'a', 'org', 'any', objects.length > 4 ? 'filler-7' : undefined, undefined]);
    }
  });

  it('selects WorkloadEntries by every label of the selector', async () => {
    const we = (name: string, labels: Record<string, string>, address: string) => ({ ...meta('WorkloadEntry', name), spec: { address, labels } });
    const objects = [
      {
        ...meta('ServiceEntry', 'api'),
        spec: {
          hosts: ['api.shop.svc.cluster.local'],
          location: 'MESH_INTERNAL',
          resolution: 'STATIC',
          ports: [{ number: 80, name: 'http', protocol: 'HTTP' }],
          workloadSelector: { labels: { app: 'api', track: 'stable' } },
        },
      },
      ...Array.from({ length: 30 }, (_, i) => we(`app-only-${i}`, { app: 'api' }, `10.0.1.${i + 1}`)),
      ...Array.from({ length: 30 }, (_, i) => we(`track-only-${i}`, { track: 'stable' }, `10.0.2.${i + 1}`)),
      we('both', { app: 'api', track: 'stable', extra: 'x' }, '10.0.3.1'),
      { ...meta('WorkloadEntry', 'elsewhere', 'other'), spec: { address: '10.0.4.1', labels: { app: 'api', track: 'stable' } } },
    ];
    const mesh = await meshOf(new PushSource(objects.map((value, i) => ({ value, location: { file: `w[${i}]` } }))));
    expect(mesh.snapshot.service('api.shop.svc.cluster.local')?.ports[0]?.endpoints.map((e) => e.address)).toEqual(['10.0.3.1']);
  });
});
