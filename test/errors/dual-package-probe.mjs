// Loads both builds of the package into this one process, as an ESM application with a CommonJS
// dependency that also requires sidecarless does, and prints what each build sees of the other's
// state as JSON. Run by dual-package.test.ts: node dual-package-probe.mjs <build dir> <pod port>.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [dir, port] = process.argv.slice(2);
const esm = await import(pathToFileURL(join(dir, 'index.js')).href);
const cjs = createRequire(import.meta.url)(join(dir, 'index.cjs'));

const config = [
  {
    apiVersion: 'networking.istio.io/v1',
    kind: 'ServiceEntry',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: {
      hosts: ['reviews.shop.svc.cluster.local'],
      location: 'MESH_INTERNAL',
      resolution: 'STATIC',
      ports: [{ number: Number(port), name: 'http', protocol: 'HTTP' }],
      endpoints: [{ address: '127.0.0.2' }],
    },
  },
];
const url = `http://reviews:${port}/`;
const caught = (promise) =>
  promise.then(
    () => undefined,
    (error) => error,
  );
const classes = (error, build) =>
  Object.fromEntries(
    ['MeshError', 'UnknownHostError', 'MeshClosedError', 'MeshConfigError', 'InvalidRequestError', 'DnsLookupError'].map((name) => [
      name,
      error instanceof build[name],
    ]),
  );
const out = { twoBuilds: esm.MeshError !== cjs.MeshError && esm.createMesh !== cjs.createMesh };

// The deadline set through one build is the one the other reads.
out.esmDeadlineSeenByCjs = esm.runWithDeadline(5_000, () => cjs.remainingTimeMs());
out.cjsDeadlineSeenByEsm = cjs.runWithDeadline(5_000, () => esm.remainingTimeMs());
out.noDeadlineOutside = cjs.remainingTimeMs() === undefined && esm.remainingTimeMs() === undefined;

const cjsMesh = await cjs.createMesh({ namespace: 'shop', dns: false, watch: false, config });
const esmMesh = await esm.createMesh({ namespace: 'shop', dns: false, watch: false, config, outboundTrafficPolicy: 'REGISTRY_ONLY' });
const live = await cjsMesh.request(url);
out.withoutDeadline = { status: live.statusCode, body: (await live.body.text()).length > 0 };
const expired = await esm.runWithDeadline(0, () => cjsMesh.request(url));
out.expiredEsmDeadlineCjsMesh = { status: expired.statusCode, body: await expired.body.text(), flags: expired.headers['x-sidecarless-response-flags'] };

// Errors of one build are instances of the other build's classes, and of no unrelated one.
const unknownHost = await caught(esmMesh.request(`http://elsewhere.example:${port}/`));
out.unknownHostFromEsm = { code: unknownHost?.code, esm: classes(unknownHost, esm), cjs: classes(unknownHost, cjs) };
const rejected = await caught(
  cjs.createMesh({
    namespace: 'shop',
    dns: false,
    watch: false,
    config: [
      {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        metadata: { name: 'x', namespace: 'shop' },
        spec: { hosts: ['x'], http: [{ timeout: 'soon' }] },
      },
    ],
  }),
);
out.configErrorFromCjs = { code: rejected?.code, esm: classes(rejected, esm), cjs: classes(rejected, cjs) };
await cjsMesh.close();
const closed = await caught(cjsMesh.serveAdmin({ port: 0 }));
out.closedFromCjs = { code: closed?.code, esm: classes(closed, esm) };
out.plainErrorIsNoMeshError = !(new Error('x') instanceof esm.MeshError) && !(new TypeError('x') instanceof cjs.MeshError);

// A balancer policy registered through one build is known to the other.
esm.registerBalancer('PROBE_POLICY', () => ({ update() {}, pick: () => undefined }));
out.policyRegisteredInEsmSeenByCjs = cjs.balancerNames().includes('PROBE_POLICY');

await esmMesh.close();
console.log(JSON.stringify(out));
