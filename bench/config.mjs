// bench/config: compile 1,000 services (one VirtualService, DestinationRule and ServiceEntry each)
// through the public API, then apply one changed resource (a VirtualService, DestinationRule or
// ServiceEntry in turn; the median is printed). Targets (issue 2): full compile
// <= 500 ms, one change <= 10 ms, snapshot heap <= 20 MB.
// Run: npm run bench:config   (builds first; node runs with --expose-gc for the heap figure)
import { createMesh } from '../dist/index.js';

const SERVICES = Number(process.env.SERVICES ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 50);

function resources(i, version = 'v2') {
  const name = `svc-${i}`;
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name, namespace: 'shop' },
      spec: {
        hosts: [`${name}.shop.svc.cluster.local`],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }],
        endpoints: Array.from({ length: 3 }, (_, k) => ({ address: `10.${(i >> 8) & 255}.${i & 255}.${k + 1}`, labels: { version: k === 2 ? 'v2' : 'v1' } })),
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name, namespace: 'shop' },
      spec: {
        host: name,
        trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' }, connectionPool: { http: { http1MaxPendingRequests: 100 } } },
        subsets: [
          { name: 'v1', labels: { version: 'v1' } },
          { name: 'v2', labels: { version: 'v2' } },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name, namespace: 'shop' },
      spec: {
        hosts: [name],
        http: [
          {
            name: 'canary',
            match: [{ headers: { 'x-canary': { exact: 'true' } } }, { uri: { regex: '/beta/[a-z]+' } }],
            route: [{ destination: { host: name, subset: version } }],
          },
          {
            route: [
              { destination: { host: name, subset: 'v1' }, weight: 90 },
              { destination: { host: name, subset: 'v2' }, weight: 10 },
            ],
            timeout: '2s',
            retries: { attempts: 3, perTryTimeout: '500ms' },
          },
        ],
      },
    },
  ];
}

/** A source we can push to, like the Kubernetes API source will. */
class PushSource {
  id = 'bench';
  documents = [];
  start(onUpdate) {
    this.onUpdate = onUpdate;
    onUpdate({ source: this.id, documents: this.documents, issues: [] });
    return Promise.resolve();
  }
  push(documents) {
    this.documents = documents;
    this.onUpdate({ source: this.id, documents, issues: [] });
  }
  close() {
    return Promise.resolve();
  }
}

const toDocs = (objects) => objects.map((value, i) => ({ value, location: { file: `bench[${i}]` } }));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gc = globalThis.gc ?? (() => {});

const objects = Array.from({ length: SERVICES }, (_, i) => resources(i)).flat();

// Warm-up compile (JIT), then measured ones.
const compileTimes = [];
for (let round = 0; round < 5; round++) {
  const source = new PushSource();
  source.documents = toDocs(objects);
  const t0 = performance.now();
  const mesh = await createMesh({ namespace: 'shop', sources: [source] });
  compileTimes.push(performance.now() - t0);
  await mesh.close();
}

gc();
gc();
const before = process.memoryUsage().heapUsed;
const source = new PushSource();
source.documents = toDocs(objects);
const mesh = await createMesh({ namespace: 'shop', sources: [source] });
gc();
gc();
const heapMb = (process.memoryUsage().heapUsed - before) / 1024 / 1024;

// Steady state: the first changes also warm up the JIT, as in a long-running process.
const WARMUP = 20;
const changeTimes = [];
let documents = source.documents;
for (let round = 0; round < WARMUP + ROUNDS; round++) {
  // Alternate the kind that changes: a VirtualService (route), a DestinationRule, a ServiceEntry.
  const i = round % SERVICES;
  const kind = round % 3;
  const changed = resources(i, round % 2 ? 'v1' : 'v2')[[2, 1, 0][kind]];
  if (kind === 1) changed.spec.trafficPolicy.loadBalancer.simple = round % 2 ? 'ROUND_ROBIN' : 'RANDOM';
  if (kind === 2) changed.spec.endpoints[0].address = `10.255.${round & 255}.1`;
  const index = i * 3 + [2, 1, 0][kind];
  documents = documents.slice();
  documents[index] = { value: changed, location: { file: `bench[${index}]` } };
  const applied = new Promise((resolve) => mesh.once('snapshot', resolve));
  const t0 = performance.now();
  source.push(documents);
  await applied;
  if (round >= WARMUP) changeTimes.push(performance.now() - t0);
}
await mesh.close();

const full = median(compileTimes.slice(1));
const change = median(changeTimes);
const row = (what, value, unit, target) =>
  `${what.padEnd(34)} ${value.toFixed(2).padStart(9)} ${unit.padEnd(3)} target <= ${target} ${unit}  ${value <= target ? 'ok' : 'MISSED'}`;
console.log(`bench/config: ${SERVICES} services (${objects.length} resources), node ${process.version}`);
console.log(row('full compile (validate + compile)', full, 'ms', 500));
console.log(row('one changed resource', change, 'ms', 10));
console.log(row('snapshot heap', heapMb, 'MB', 20));
if (!globalThis.gc) console.log('(heap figure is approximate: run with node --expose-gc)');
