import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/clock.js';
import type { Mesh, MeshConfigError } from '../../src/index.js';
import type { InspectedCluster, MeshInspection } from '../../src/inspect/public.js';
import { createMesh } from '../../src/index.js';
import { TestClock } from '../helpers/test-clock.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';
import { Pods } from '../helpers/pods.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';

let pods: Pods;
/** Pod → status it answers with instead of its JSON. */
const failing = new Map<string, number>();
/** Requests held open by the pods until the test releases them. */
const held: (() => void)[] = [];
let holdNext = false;
let onHeld: (() => void) | undefined;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  pods.behave = (req, res, pod) => {
    const status = failing.get(pod);
    if (status !== undefined) {
      req.resume();
      res.writeHead(status, { 'x-pod': pod }).end('failing');
      return true;
    }
    if (holdNext) {
      holdNext = false;
      req.resume();
      held.push(() => res.writeHead(200, { 'x-pod': pod }).end('slow'));
      onHeld?.();
      return true;
    }
    return false;
  };
});
afterAll(() => pods.close());

let mesh: Mesh | undefined;
afterEach(async () => {
  failing.clear();
  for (const release of held.splice(0)) release();
  await mesh?.close();
  mesh = undefined;
});

const config = (weights: [number, number], extraPolicy = '') => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 }, locality: eu-west/a, weight: 3 }
  - { address: 127.0.0.3, labels: { version: v2 } }
  - { address: 127.0.0.4, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    connectionPool: { tcp: { connectTimeout: 2s }, http: { http2MaxRequests: 50 } }
    outlierDetection: { consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
${extraPolicy}
  subsets:
  - name: v1
    labels: { version: v1 }
  - name: v2
    labels: { version: v2 }
    trafficPolicy: { loadBalancer: { simple: RANDOM } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: jason
    match: [{ headers: { end-user: { exact: jason } } }]
    route: [{ destination: { host: reviews, subset: v2 } }]
    retries: { attempts: 0 }
  - name: split
    route:
    - { destination: { host: reviews, subset: v1 }, weight: ${weights[0]} }
    - { destination: { host: reviews, subset: v2 }, weight: ${weights[1]} }
    retries: { attempts: 0 }
`;

const FQDN = 'reviews.shop.svc.cluster.local';
const cluster = (view: MeshInspection, subset?: string): InspectedCluster => {
  const found = view.clusters.find((c) => c.host === FQDN && c.subset === subset && c.port === pods.port);
  if (!found) throw new Error(`no cluster for subset ${subset ?? '-'} in ${view.clusters.map((c) => c.name).join(', ')}`);
  return found;
};

describe('mesh.inspect()', () => {
  it('shows the routes in order with their matches and weights, and the clusters with merged policy and endpoints', async () => {
    mesh = await meshFromYaml(config([80, 20]), { namespace: 'shop', dns: false });
    const view = mesh.inspect();
    // Plain JSON: it survives a round trip unchanged.
    expect(JSON.parse(JSON.stringify(view))).toEqual(view);

    expect(view.routes).toHaveLength(1);
    const table = view.routes[0]!;
    expect(table.host).toBe(FQDN);
    expect(table.virtualService).toEqual({ kind: 'VirtualService', namespace: 'shop', name: 'reviews' });
    expect(table.routes.map((r) => r.name)).toEqual(['jason', 'split']);
    expect(table.routes[0]!.matches).toHaveLength(1);
    expect(table.routes[0]!.matches[0]).toContain('jason');
    expect(table.routes[0]!.path).toBe('spec.http[0]');
    expect(table.routes[0]!.actions).toEqual(['retries']);
    expect(table.routes[1]!.matches).toEqual([]);
    expect(table.routes[1]!.destinations).toEqual([
      { host: FQDN, subset: 'v1', weight: 80, percent: 80 },
      { host: FQDN, subset: 'v2', weight: 20, percent: 20 },
    ]);
    expect(table.routes[1]!.actions).toEqual(['retries']);

    // One cluster per port, and one per subset, named as Envoy names them.
    expect(view.clusters.map((c) => c.name)).toEqual([
      `outbound|${pods.port}||${FQDN}`,
      `outbound|${pods.port}|v1|${FQDN}`,
      `outbound|${pods.port}|v2|${FQDN}`,
    ]);
    const all = cluster(view);
    expect(all.discovery).toBe('static');
    expect(all.serviceEntry).toEqual({ kind: 'ServiceEntry', namespace: 'shop', name: 'reviews' });
    expect(all.destinationRules).toEqual([{ kind: 'DestinationRule', namespace: 'shop', name: 'reviews' }]);
    expect(all.policy.loadBalancer).toBe('ROUND_ROBIN');
    expect(all.policy.connectTimeoutMs).toBe(2000);
    expect(all.policy.limits?.maxRequests).toBe(50);
    expect(all.policy.outlierDetection).toMatchObject({ consecutive5xxErrors: 2, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50 });
    expect(all.endpoints.map((e) => e.address)).toEqual([`127.0.0.2:${pods.port}`, `127.0.0.3:${pods.port}`, `127.0.0.4:${pods.port}`]);
    expect(all.endpoints[0]).toMatchObject({ health: 'healthy', weight: 3, locality: 'eu-west/a/', labels: { version: 'v1' }, inFlight: 0 });

    // The subset's own policy wins over the top level's (merged as Istio merges it).
    expect(cluster(view, 'v2').policy.loadBalancer).toBe('RANDOM');
    expect(cluster(view, 'v2').policy.connectTimeoutMs).toBe(2000);
    expect(cluster(view, 'v1').endpoints.map((e) => e.address)).toEqual([`127.0.0.2:${pods.port}`]);
    expect(view.config.resources).toEqual({ ServiceEntry: 1, DestinationRule: 1, VirtualService: 1 });
    expect(view.config.sources).toHaveLength(1);
    expect(view.config.sources[0]!.documents).toBe(3);
  });

  it('follows a configuration change, and shows a rejected change with its field path while the last good snapshot serves', async () => {
    const source = new PushSource(yamlDocs(config([80, 20])));
    mesh = await createMesh({ namespace: 'shop', sources: [source], dns: false });
    const before = mesh.inspect();
    expect(before.config.lastRejection).toBeUndefined();

    const accepted = new Promise((r) => mesh!.once('snapshot', r));
    source.push(yamlDocs(config([10, 90])));
    await accepted;
    const after = mesh.inspect();
    expect(after.config.snapshotVersion).toBe(before.config.snapshotVersion + 1);
    expect(after.routes[0]!.routes[1]!.destinations.map((d) => d.percent)).toEqual([10, 90]);

    const rejected = new Promise<MeshConfigError>((r) => mesh!.once('configRejected', r));
    source.push(yamlDocs(config([10, 90]).replace('retries: { attempts: 0 }\n', 'retries: { attempts: 0, perTryTimeout: soon }\n')));
    await rejected;
    const view = mesh.inspect();
    expect(view.config.snapshotVersion).toBe(after.config.snapshotVersion);
    expect(view.routes[0]!.routes[1]!.destinations.map((d) => d.percent)).toEqual([10, 90]);
    expect(view.config.lastRejection?.issues).toEqual([
      expect.objectContaining({ path: 'spec.http[0].retries.perTryTimeout', resource: { kind: 'VirtualService', namespace: 'shop', name: 'reviews' } }),
    ]);
    expect(view.config.sources[0]!.errors.map((e) => e.path)).toEqual(['spec.http[0].retries.perTryTimeout']);
  });

  it('shows an endpoint outlier detection ejected, with when it may return, and the return', async () => {
    const clock = new TestClock({ wallNow: Date.parse('2030-01-01T00:00:00Z') });
    mesh = await meshFromYaml(config([100, 0]), { namespace: 'shop', clock, random: seededRandom(3), dns: false });
    failing.set('127.0.0.3', 503);
    // Round robin over v2's two pods (jason's route): four requests give 127.0.0.3 its two errors.
    for (let i = 0; i < 4; i++) {
      const res = await mesh.request(`http://reviews:${pods.port}/`, { headers: { 'end-user': 'jason' } });
      await res.body.dump();
    }
    const view = mesh.inspect();
    const v2 = cluster(view, 'v2');
    expect(v2.active).toBe(true);
    const ejected = v2.endpoints.find((e) => e.address === `127.0.0.3:${pods.port}`);
    expect(ejected).toMatchObject({ health: 'ejected', ejections: 1 });
    // baseEjectionTime 30s from the ejection, in the mesh clock's wall-clock time (it has not moved since).
    expect(view.takenAt).toBe('2030-01-01T00:00:00.000Z');
    expect(ejected!.ejectedUntil).toBe('2030-01-01T00:00:30.000Z');
    expect(v2.endpoints.find((e) => e.address === `127.0.0.4:${pods.port}`)?.health).toBe('healthy');
    expect(v2.endpoints.filter((e) => e.health === 'healthy')).toHaveLength(1);

    failing.clear();
    clock.advance(31_000);
    expect(cluster(mesh.inspect(), 'v2').endpoints.map((e) => e.health)).toEqual(['healthy', 'healthy']);
  });

  it('counts a request in flight on its endpoint and cluster while it is open, and not after', async () => {
    mesh = await meshFromYaml(config([100, 0]), { namespace: 'shop', dns: false });
    const arrived = new Promise<void>((r) => (onHeld = r));
    holdNext = true;
    const pending = mesh.request(`http://reviews:${pods.port}/`);
    await arrived;
    const open = cluster(mesh.inspect(), 'v1');
    expect(open.inFlight).toBe(1);
    expect(open.endpoints).toEqual([expect.objectContaining({ address: `127.0.0.2:${pods.port}`, inFlight: 1 })]);
    expect(cluster(mesh.inspect(), 'v2').inFlight).toBe(0);

    held.shift()!();
    const res = await pending;
    await res.body.dump();
    expect(res.headers['x-pod']).toBe('127.0.0.2');
    expect(cluster(mesh.inspect(), 'v1').inFlight).toBe(0);
  });

  it('shows breakers and rate limits', async () => {
    mesh = await meshFromYaml(
      `${config([100, 0])}
---
apiVersion: sidecarless.io/v1alpha1
kind: RateLimitPolicy
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews
  limits:
  - name: per-user
    key: { header: x-user }
    tokenBucket: { maxTokens: 5, tokensPerFill: 1, fillInterval: 1s }
`,
      { namespace: 'shop', dns: false, breakers: { reviews: { errorThresholdPercentage: 50 } } },
    );
    let view = mesh.inspect();
    expect(view.breakers).toEqual([{ host: FQDN, state: 'closed' }]);
    expect(cluster(view).breaker).toBe('closed');
    expect(view.rateLimits).toEqual([
      expect.objectContaining({ scope: 'LOCAL', maxTokens: 5, tokensPerFill: 1, fillIntervalMs: 1000, key: 'header:x-user', backend: 'unused' }),
    ]);
    const res = await mesh.request(`http://reviews:${pods.port}/`);
    await res.body.dump();
    view = mesh.inspect();
    expect(view.rateLimits[0]!.backend).toBe('local');
  });
});
