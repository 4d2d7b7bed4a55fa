import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Host } from '../../src/balancer/index.js';
import type { Mesh, MeshConfigError } from '../../src/index.js';
import type { Snapshot } from '../../src/inspect/public.js';
import { createMesh, registerBalancer } from '../../src/index.js';
import { PushSource, yamlDocs } from '../helpers/push-source.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';

// Two pods of one service: v1 at 127.0.0.2, v2 at 127.0.0.3.
let pods: Pods;
beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2', '127.0.0.3']);
});
afterAll(() => pods.close());

let mesh: Mesh | undefined;
afterEach(async () => {
  await mesh?.close();
  mesh = undefined;
});

/** A policy an application registers: it serves only endpoints that have a zone, and says so. */
registerBalancer('ZONE_PINNED_TEST', () => {
  let hosts: readonly Host[] = [];
  return {
    update: (next) => {
      const unzoned = next.find((h) => h.endpoint.locality.zone === '');
      if (unzoned) throw new Error(`ZONE_PINNED_TEST needs a zone on every endpoint; ${unzoned.endpoint.address} has none`);
      hosts = next;
    },
    pick: () => hosts[0],
  };
});

const config = (o: { subset: string; annotations?: string; v2Policy?: string }) => `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: http, protocol: HTTP }]
  endpoints:
  - { address: 127.0.0.2, labels: { version: v1 } }
  - { address: 127.0.0.3, labels: { version: v2 } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
  annotations: {${o.annotations ?? ''}}
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
  subsets:
  - { name: v1, labels: { version: v1 } }
  - name: v2
    labels: { version: v2 }
${o.v2Policy ? `    trafficPolicy: ${o.v2Policy}` : ''}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - route: [{ destination: { host: reviews, subset: ${o.subset} } }]
`;

async function start(yaml: string): Promise<{ mesh: Mesh; source: PushSource }> {
  const source = new PushSource(yamlDocs(yaml, 'reviews.yaml'), 'push');
  mesh = await createMesh({ namespace: 'shop', sources: [source], dns: false });
  return { mesh, source };
}

async function answeredBy(m: Mesh): Promise<string> {
  const res = await m.request(`http://reviews:${pods.port}/`);
  return ((await res.body.json()) as PodReply).pod;
}

/** The next rejection, failing the test if a snapshot is accepted instead. */
function nextRejection(m: Mesh): Promise<MeshConfigError> {
  return new Promise((resolve, reject) => {
    m.once('configRejected', resolve);
    m.once('snapshot', (s: Snapshot) => reject(new Error(`snapshot ${s.version} was accepted`)));
  });
}

describe('a snapshot becomes current only when everything built from it succeeded', () => {
  it('rejects an unknown balancer named by annotation when the change is compiled, and the last good config keeps routing', async () => {
    const { mesh: m, source } = await start(config({ subset: 'v1' }));
    expect(await answeredBy(m)).toBe('127.0.0.2');

    // The route moves to v2 and the rule names a balancer nobody registered: neither applies.
    const rejected = nextRejection(m);
    source.push(yamlDocs(config({ subset: 'v2', annotations: 'sidecarless.io/load-balancer: NO_SUCH_POLICY' }), 'reviews.yaml'));
    const error = await rejected;
    expect(error.code).toBe('ERR_MESH_CONFIG');
    expect(error.message).toContain('snapshot 1 keeps serving');
    const issue = error.issues.find((i) => i.severity === 'error');
    expect(issue).toMatchObject({
      resource: { kind: 'DestinationRule', namespace: 'shop', name: 'reviews' },
      path: 'metadata.annotations.sidecarless.io/load-balancer',
    });
    expect(issue?.message).toMatch(/expected a registered load balancer policy \(one of ROUND_ROBIN, .*\), found "NO_SUCH_POLICY"/);
    expect(issue?.location?.file).toBe('reviews.yaml[1]');

    expect(m.snapshot.version).toBe(1);
    expect(m.inspect().config.lastRejection?.issues[0]?.path).toBe('metadata.annotations.sidecarless.io/load-balancer');
    for (let i = 0; i < 4; i++) expect(await answeredBy(m)).toBe('127.0.0.2');
  });

  it("rejects a ring size beyond Envoy's maximum at compile time, naming the subset field, before any cluster uses it", async () => {
    const { mesh: m, source } = await start(config({ subset: 'v1' }));
    expect(await answeredBy(m)).toBe('127.0.0.2');

    const rejected = nextRejection(m);
    source.push(
      yamlDocs(
        config({
          subset: 'v2',
          v2Policy: '{ loadBalancer: { consistentHash: { httpHeaderName: x-user, ringHash: { minimumRingSize: 9000000 } } } }',
        }),
        'reviews.yaml',
      ),
    );
    const error = await rejected;
    const issue = error.issues.find((i) => i.severity === 'error');
    expect(issue).toMatchObject({
      resource: { kind: 'DestinationRule', name: 'reviews' },
      path: 'spec.subsets[1].trafficPolicy.loadBalancer.consistentHash.ringHash.minimumRingSize',
    });
    expect(issue?.message).toContain('expected a ring size of at most 8388608');
    expect(m.snapshot.version).toBe(1);
    expect(await answeredBy(m)).toBe('127.0.0.2');

    // The same change with a valid size applies: the route and the subset's policy move together.
    const accepted = new Promise<Snapshot>((resolve) => m.once('snapshot', resolve));
    source.push(
      yamlDocs(
        config({
          subset: 'v2',
          v2Policy: '{ loadBalancer: { consistentHash: { httpHeaderName: x-user, ringHash: { minimumRingSize: 2048 } } } }',
        }),
        'reviews.yaml',
      ),
    );
    expect((await accepted).version).toBe(2);
    expect(await answeredBy(m)).toBe('127.0.0.3');
  });

  it('rejects a change whose balancer cannot be built from the endpoints in use, and the previous snapshot keeps serving with its clusters', async () => {
    const { mesh: m, source } = await start(config({ subset: 'v1' }));
    expect(await answeredBy(m)).toBe('127.0.0.2');
    expect(m.inspect().clusters.find((c) => c.subset === 'v1')?.policy.loadBalancer).toBe('ROUND_ROBIN');

    // The registered policy is known (so the change compiles), but refuses the v1 cluster's
    // endpoint, which has no zone: building the cluster from the candidate fails.
    const rejected = nextRejection(m);
    source.push(yamlDocs(config({ subset: 'v2', annotations: 'sidecarless.io/load-balancer: ZONE_PINNED_TEST' }), 'reviews.yaml'));
    const error = await rejected;
    expect(error.message).toContain('snapshot 1 keeps serving');
    const issue = error.issues.find((i) => i.severity === 'error');
    expect(issue).toMatchObject({
      code: 'build-failed',
      resource: { kind: 'DestinationRule', namespace: 'shop', name: 'reviews' },
      path: 'metadata.annotations.sidecarless.io/load-balancer',
    });
    expect(issue?.message).toContain(
      `the load balancer for reviews.shop.svc.cluster.local subset v1 port ${pods.port} could not be built: ZONE_PINNED_TEST needs a zone on every endpoint; 127.0.0.2 has none`,
    );

    // Nothing of the candidate applies: not its route, not its balancer.
    expect(m.snapshot.version).toBe(1);
    expect(m.inspect().config.lastRejection?.issues[0]?.code).toBe('build-failed');
    for (let i = 0; i < 4; i++) expect(await answeredBy(m)).toBe('127.0.0.2');
    expect(m.inspect().clusters.find((c) => c.subset === 'v1')?.policy.loadBalancer).toBe('ROUND_ROBIN');

    // A later good change applies as usual.
    const accepted = new Promise<Snapshot>((resolve) => m.once('snapshot', resolve));
    source.push(yamlDocs(config({ subset: 'v2' }), 'reviews.yaml'));
    expect((await accepted).version).toBe(2);
    expect(await answeredBy(m)).toBe('127.0.0.3');
    expect(m.inspect().config.lastRejection).toBeUndefined();
  });
});
