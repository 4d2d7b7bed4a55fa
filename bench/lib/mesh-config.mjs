// Istio resources the data-path benchmarks run on, and the one hook they need into the mesh.
import { Dispatcher } from 'undici';

/**
 * A service as an application would have it: a ServiceEntry with STATIC endpoints on loopback
 * pods, a DestinationRule choosing the balancer (`PEAK_EWMA` goes through our annotation), and a
 * VirtualService whose default route comes after two match rules (a header match and a prefix
 * rewrite), so every request pays for real route matching.
 * `retries`: the HTTPRetry of every route (unset: none written, so Istio's default retry policy
 * applies; `{ attempts: 0 }` turns retries off). `outlierDetection`: the DestinationRule's.
 */
export function serviceResources({ name = 'reviews', namespace = 'shop', port, addresses, policy = 'ROUND_ROBIN', timeout, retries, outlierDetection }) {
  const peakEwma = policy === 'PEAK_EWMA';
  const onRoute = retries ? { retries } : {};
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name, namespace },
      spec: {
        hosts: [`${name}.${namespace}.svc.cluster.local`],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: port, name: 'http', protocol: 'HTTP' }],
        endpoints: addresses.map((address, i) => ({ address, labels: { version: i === 0 ? 'v2' : 'v1' } })),
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name, namespace, ...(peakEwma ? { annotations: { 'sidecarless.io/load-balancer': 'PEAK_EWMA' } } : {}) },
      spec: {
        host: name,
        trafficPolicy: { loadBalancer: { simple: peakEwma ? 'ROUND_ROBIN' : policy }, ...(outlierDetection ? { outlierDetection } : {}) },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name, namespace },
      spec: {
        hosts: [name],
        http: [
          { name: 'tester', match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ destination: { host: name, subset: 'v2' } }], ...onRoute },
          {
            name: 'legacy',
            match: [{ uri: { prefix: '/api/v1/' } }],
            rewrite: { uri: '/v2/' },
            route: [{ destination: { host: name, subset: 'v1' } }],
            ...onRoute,
          },
          { name: 'default', route: [{ destination: { host: name } }], ...(timeout ? { timeout } : {}), ...onRoute },
        ],
      },
    },
  ];
}

/**
 * Replaces the per-endpoint connection pool factory of a mesh before its first request.
 * createMesh has no option for it yet (ClusterManager takes `poolFactory`, Mesh does not pass
 * one), so this reaches into the running objects; it must be called before any request.
 */
export function setPoolFactory(mesh, factory) {
  const clusters = mesh.clusters;
  if (!clusters?.deps) throw new Error('setPoolFactory: the mesh has no clusters.deps any more; update bench/lib/mesh-config.mjs');
  clusters.deps.poolFactory = factory;
}

const noop = () => {};
const controller = { aborted: false, paused: false, reason: null, abort: noop, pause: noop, resume: noop };
const emptyHeaders = { 'content-length': '0' };
const noTrailers = {};

/**
 * A Dispatcher standing in for a connection pool: answers every request at once, synchronously,
 * with 200 and an empty body (no I/O, no timers), through the handler API undici 7+ uses.
 */
export class StubPool extends Dispatcher {
  calls = 0;
  dispatch(_opts, handler) {
    this.calls++;
    handler.onRequestStart?.(controller, null);
    handler.onResponseStart?.(controller, 200, emptyHeaders, 'OK');
    handler.onResponseEnd?.(controller, noTrailers);
    return true;
  }
  close(cb) {
    if (cb) return void cb();
    return Promise.resolve();
  }
  destroy(err, cb) {
    const done = typeof err === 'function' ? err : cb;
    if (done) return void done();
    return Promise.resolve();
  }
}

/** A gRPC service of one STATIC endpoint, `<name>.bench`, as the gRPC benchmarks route to it. */
export function grpcService({ name, port, address }) {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name, namespace: 'bench' },
    spec: {
      hosts: [`${name}.bench.svc.cluster.local`],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: port, name: 'grpc', protocol: 'GRPC' }],
      endpoints: [{ address }],
    },
  };
}
