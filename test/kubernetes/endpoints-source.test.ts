import { describe, expect, it } from 'vitest';
import type { KubernetesDiscoveryNote } from '../../src/kubernetes/discovery/index.js';
import { KubernetesEndpointSource } from '../../src/kubernetes/discovery/index.js';
import { endpoint, namespaceCollections, node, pod, service, slice } from '../helpers/kube-objects.js';
import { MemoryKubeWatcher } from '../helpers/memory-kube.js';

// The source on its own: what it tells the cluster manager, and the endpoints it builds.
function source(fallbackRegion = ''): { src: KubernetesEndpointSource; watcher: MemoryKubeWatcher; changes: string[]; notes: KubernetesDiscoveryNote[] } {
  const watcher = new MemoryKubeWatcher();
  const src = new KubernetesEndpointSource(watcher, { namespace: 'shop', fallbackRegion });
  const changes: string[] = [];
  const notes: KubernetesDiscoveryNote[] = [];
  src.on('change', (key) => changes.push(key));
  src.on('note', (note) => notes.push(note));
  return { src, watcher, changes, notes };
}

const REVIEWS = 'reviews.shop.svc.cluster.local';
const ref = (host: string) => {
  const r = new KubernetesEndpointSource(new MemoryKubeWatcher()).parse(host);
  if (!r) throw new Error(`not a service host: ${host}`);
  return r;
};

describe('KubernetesEndpointSource', () => {
  it('tells only the services a change concerns', async () => {
    const { src, watcher, changes } = source();
    const { slices, services, pods, nodes } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'reviews', [{ name: 'http', port: 9080 }]), service('shop', 'ratings', [{ name: 'http', port: 9080 }]));
    pods.upsert(pod('shop', 'r-1', { version: 'v1' }));
    nodes.upsert(node('n-1', 'r', 'z1'));
    slices.upsert(
      slice('shop', 'reviews-a', 'reviews', [{ name: 'http', port: 8080 }], [endpoint('10.0.0.1', 'r-1', { nodeName: 'n-1' })]),
      slice('shop', 'ratings-a', 'ratings', [{ name: 'http', port: 8080 }], [endpoint('10.0.0.2', 'g-1')]),
    );
    changes.length = 0;

    slices.upsert(slice('shop', 'ratings-a', 'ratings', [{ name: 'http', port: 8080 }], [endpoint('10.0.0.3', 'g-2')]));
    expect(changes).toEqual(['shop/ratings']);
    changes.length = 0;

    // A pod update that keeps its labels is no change; a label change is, for its services only.
    pods.upsert({ metadata: { name: 'r-1', namespace: 'shop', labels: { version: 'v1' }, resourceVersion: '9' } });
    expect(changes).toEqual([]);
    pods.upsert(pod('shop', 'r-1', { version: 'v2' }));
    expect(changes).toEqual(['shop/reviews']);
    expect(src.endpoints(ref(REVIEWS), REVIEWS, 9080).endpoints.map((e) => e.labels)).toEqual([{ version: 'v2' }]);
    changes.length = 0;

    // A node relabelled to another zone moves the endpoints on it.
    nodes.upsert(node('n-1', 'r', 'z2'));
    expect(changes).toEqual(['shop/reviews']);
    expect(src.endpoints(ref(REVIEWS), REVIEWS, 9080).endpoints[0]!.locality).toEqual({ region: 'r', zone: 'z2', subZone: '' });
    changes.length = 0;

    // A slice whose service label changes leaves one service for another: both are told.
    slices.upsert(slice('shop', 'reviews-a', 'ratings', [{ name: 'http', port: 8080 }], [endpoint('10.0.0.1', 'r-1')]));
    expect(changes.sort()).toEqual(['shop/ratings', 'shop/reviews']);
    expect(src.endpoints(ref(REVIEWS), REVIEWS, 9080).endpoints).toEqual([]);
    src.close();
  });

  it('maps IPv6 slice addresses and ignores FQDN slices', () => {
    const { src, watcher } = source();
    const { slices, services } = namespaceCollections(watcher, 'shop');
    services.upsert(service('shop', 'reviews', [{ name: 'http', port: 9080 }]));
    slices.upsert(
      slice('shop', 'reviews-6', 'reviews', [{ name: 'http', port: 8080 }], [endpoint('fd00::a', 'r-1', { zone: 'z1', hostname: 'r-1' })], 'IPv6'),
      slice('shop', 'reviews-4', 'reviews', [{ name: 'http', port: 8080 }], [endpoint('10.0.0.1', 'r-1', { zone: 'z1' })], 'IPv4'),
      { ...slice('shop', 'reviews-f', 'reviews', [{ name: 'http', port: 8080 }], [endpoint('db.example.com', 'r-9')]), addressType: 'FQDN' },
    );
    const { endpoints } = src.endpoints(ref(REVIEWS), REVIEWS, 9080);
    expect(endpoints.map((e) => [e.key, e.address, e.port]).sort()).toEqual([
      ['10.0.0.1:8080', '10.0.0.1', 8080],
      ['fd00::a:8080', 'fd00::a', 8080],
    ]);
    expect(src.endpoints(ref(`r-1.${REVIEWS}`), `r-1.${REVIEWS}`, 9080).endpoints.map((e) => e.address)).toEqual(['fd00::a']);
    src.close();
  });

  it('falls back to slice zones with one note when Nodes are forbidden', () => {
    const { src, watcher, notes } = source('eu-west1');
    const { slices, services, nodes } = namespaceCollections(watcher, 'shop');
    for (let i = 0; i < 3; i++) nodes.fail(403, 'nodes is forbidden: User "system:serviceaccount:shop:app" cannot list resource "nodes"');
    services.upsert(service('shop', 'reviews', [{ name: 'http', port: 9080 }]));
    slices.upsert(
      slice(
        'shop',
        'reviews-a',
        'reviews',
        [{ name: 'http', port: 8080 }],
        [endpoint('10.0.0.1', 'r-1', { nodeName: 'n-1', zone: 'eu-west1-b' }), endpoint('10.0.0.2', 'r-2', { nodeName: 'n-2' })],
      ),
    );
    expect(notes).toHaveLength(1);
    expect(notes[0]!.message).toContain('forbidden; endpoint locality comes from EndpointSlice zones (region eu-west1)');
    expect(src.endpoints(ref(REVIEWS), REVIEWS, 9080).endpoints.map((e) => e.locality)).toEqual([
      { region: 'eu-west1', zone: 'eu-west1-b', subZone: '' },
      { region: '', zone: '', subZone: '' },
    ]);
    src.close();
  });

  it('says why a service has no endpoints', () => {
    const { src, watcher } = source();
    const { services } = namespaceCollections(watcher, 'shop');
    services.fail(403, 'services is forbidden');
    expect(src.endpoints(ref(REVIEWS), REVIEWS, 9080).reason).toBe(
      `no healthy upstream for ${REVIEWS}: the Kubernetes API could not be read (services is forbidden)`,
    );
    src.close();
  });
});
