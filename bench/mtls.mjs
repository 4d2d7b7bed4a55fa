// bench/mtls (S4): mesh mTLS against raw undici over TLS with the same certificates.
//   undici.request over mTLS: an undici Agent with the workload's certificate, key and roots,
//     verifying the pods' certificates (they carry the pods' IP addresses), round robin over them
//   mesh.request (ISTIO_MUTUAL): the mesh with the same certificate directory, a DestinationRule
//     ISTIO_MUTUAL (Istio's SNI and ALPN, the pods' SPIFFE ID checked), its own balancer and pools
// The pods (node:https servers on 127.0.0.2..5, client certificates required and verified, 1 KiB
// bodies) run in a child process, so this process measures only the client. The certificates come
// from `sidecarless certs` (a development CA). Two loads:
//   keep-alive: REQUESTS at CONCURRENCY over pooled connections: the S4 ratio (target >= 0.92x);
//   new connections: HANDSHAKES requests at HANDSHAKE_CONCURRENCY, each on a new connection
//     (maxRequestsPerConnection 1 for both): the connection-setup cost per handshake, as client
//     CPU per connection and its difference to a keep-alive request.
// Variants alternate in a rotating order, ROUNDS times; a ratio is taken within each round and the
// median round's is the figure. The machine is shared: a round during which other processes used
// more than OTHER_LIMIT cores is thrown away and run again (and said so).
// Run: npm run bench:mtls
import { execFileSync } from 'node:child_process';
import { subscribe } from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request as undiciRequest } from 'undici';
import { createMesh } from '../dist/index.js';
import { cpuMeter, info, loadLine, machineLine, median, onExit, podAddresses, row, startPods, waitQuiet, watchdog } from './lib/common.mjs';

const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 64);
const HANDSHAKES = Number(process.env.HANDSHAKES ?? 2_000);
const HANDSHAKE_CONCURRENCY = Number(process.env.HANDSHAKE_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const PODS = Number(process.env.PODS ?? 4);
const OTHER_LIMIT = Number(process.env.OTHER_LIMIT ?? 0.25);
watchdog(1_200_000, 'bench/mtls');
console.log(machineLine('bench/mtls (S4)'));

const here = fileURLToPath(new URL('.', import.meta.url));
const cli = resolve(here, '../dist/cli.js');
const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-mtls-'));
const addresses = podAddresses(PODS);
const certs = (args) => execFileSync(process.execPath, [cli, 'certs', ...args], { stdio: 'ignore' });
certs(['ca', '--out', join(dir, 'ca')]);
certs([
  'workload',
  '--ca',
  join(dir, 'ca'),
  '--out',
  join(dir, 'reviews'),
  '--namespace',
  'shop',
  '--service-account',
  'reviews',
  ...addresses.flatMap((a) => ['--ip', a]),
]);
certs(['workload', '--ca', join(dir, 'ca'), '--out', join(dir, 'frontend'), '--namespace', 'shop', '--service-account', 'frontend']);

const podDir = join(dir, 'reviews');
const pods = await startPods({
  addresses,
  bodySize: 1024,
  tls: { cert: join(podDir, 'cert-chain.pem'), key: join(podDir, 'key.pem'), ca: join(podDir, 'root-cert.pem') },
});
onExit(() => {
  process.kill(pods.pid);
  rmSync(dir, { recursive: true, force: true });
});
const ourPids = () => [process.pid, pods.pid];

const client = {
  cert: readFileSync(join(dir, 'frontend', 'cert-chain.pem'), 'utf8'),
  key: readFileSync(join(dir, 'frontend', 'key.pem'), 'utf8'),
  ca: readFileSync(join(dir, 'frontend', 'root-cert.pem'), 'utf8'),
};
const HOST = 'reviews.shop.svc.cluster.local';
/** The service, the pods as its endpoints, ISTIO_MUTUAL; `perConnection` requests per connection at most. */
function meshConfig(perConnection) {
  return [
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: {
        hosts: [HOST],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: 9080, name: 'http', protocol: 'HTTP', targetPort: pods.port }],
        endpoints: addresses.map((address) => ({ address, serviceAccount: 'reviews' })),
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: {
        host: HOST,
        trafficPolicy: {
          tls: { mode: 'ISTIO_MUTUAL' },
          loadBalancer: { simple: 'ROUND_ROBIN' },
          ...(perConnection ? { connectionPool: { http: { maxRequestsPerConnection: perConnection } } } : {}),
        },
      },
    },
  ];
}
const meshOptions = (perConnection) => ({
  namespace: 'shop',
  watch: false,
  dns: false,
  config: meshConfig(perConnection),
  certificates: { directory: join(dir, 'frontend') },
});
const meshes = { keepAlive: await createMesh(meshOptions()), handshake: await createMesh(meshOptions(1)) };
// undici's defaults, as the mesh's pools (4 s idle, HTTP/1.1 to an HTTP port); the same
// certificate, key and roots.
const agents = {
  keepAlive: new Agent({ keepAliveTimeout: 4_000, allowH2: false, connect: client }),
  handshake: new Agent({ keepAliveTimeout: 4_000, allowH2: false, maxRequestsPerClient: 1, connect: client }),
};
const rawUrls = addresses.map((a) => `https://${a}:${pods.port}/reviews/1`);
const meshUrl = `http://${HOST}:9080/reviews/1`;

async function consume(promise) {
  const res = await promise;
  const body = await res.body.arrayBuffer();
  if (res.statusCode !== 200 || body.byteLength !== 1024) throw new Error(`status ${res.statusCode}, ${body.byteLength} bytes`);
}

const variants = {
  'undici.request over mTLS': { load: 'keepAlive', call: (i) => consume(undiciRequest(rawUrls[i % PODS], { dispatcher: agents.keepAlive })) },
  'mesh.request (ISTIO_MUTUAL)': { load: 'keepAlive', call: () => consume(meshes.keepAlive.request(meshUrl)) },
  'undici.request, new connection each': { load: 'handshake', call: (i) => consume(undiciRequest(rawUrls[i % PODS], { dispatcher: agents.handshake })) },
  'mesh.request, new connection each': { load: 'handshake', call: () => consume(meshes.handshake.request(meshUrl)) },
};
const names = Object.keys(variants);

let counting = false;
let opened = 0;
subscribe('undici:client:connected', () => {
  if (counting) opened++;
});
const meters = { client: cpuMeter(() => [process.pid]), pods: cpuMeter(() => [pods.pid]), all: cpuMeter(ourPids) };
const lap = () => {
  const r = Object.fromEntries(Object.entries(meters).map(([k, m]) => [k, m.lap()]));
  return { client: r.client.ours, pods: r.pods.ours, other: r.all.other };
};

async function run(name, n) {
  const { call, load } = variants[name];
  const concurrency = load === 'keepAlive' ? CONCURRENCY : HANDSHAKE_CONCURRENCY;
  let next = 0;
  let errors = 0;
  let firstError;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        await call(i);
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  };
  opened = 0;
  counting = true;
  const accepted0 = await accepted();
  const cpu0 = process.cpuUsage();
  lap();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - t0;
  const cores = lap();
  const cpu = process.cpuUsage(cpu0);
  counting = false;
  const handshakes = (await accepted()) - accepted0;
  if (errors > 0) console.log(`  ${name}: ${errors} errors (${firstError?.cause?.message ?? firstError?.message})`);
  return { rps: (n / ms) * 1000, cpuUs: (cpu.user + cpu.system) / n, connections: Math.max(opened, handshakes), cores, errors };
}

/** TLS connections the pods have accepted so far (their count, not the client's). */
async function accepted() {
  return (await pods.stats()).pods.reduce((n, p) => n + p.connections, 0);
}
const size = (name) => (variants[name].load === 'keepAlive' ? REQUESTS : HANDSHAKES);

await waitQuiet(ourPids);
for (const name of names) await run(name, Math.min(size(name), 3_000)); // warm-up: JIT, connections, sessions

const rounds = [];
let discarded = 0;
for (let attempt = 0; rounds.length < ROUNDS && attempt < 3 * ROUNDS; attempt++) {
  await waitQuiet(ourPids);
  const order = names.map((_, i) => names[(i + attempt) % names.length]);
  const round = {};
  for (const name of order) round[name] = await run(name, size(name));
  const other = Math.max(...names.map((k) => round[k].cores.other));
  const line = `${names.map((k) => `${k} ${Math.round(round[k].rps)}/s`).join(', ')}; other work up to ${other.toFixed(2)} cores`;
  if (other > OTHER_LIMIT || names.some((k) => round[k].errors > 0)) {
    discarded++;
    console.log(`  round thrown away (${other > OTHER_LIMIT ? 'other work' : 'errors'}): ${line}`);
    continue;
  }
  rounds.push(round);
  console.log(`  round ${rounds.length}: ${line}`);
}

const med = (k, f) => median(rounds.map((r) => f(r[k])));
const ratio = (a, b) => median(rounds.map((r) => r[a].rps / r[b].rps));
console.log(
  `keep-alive: ${REQUESTS} requests per run, ${CONCURRENCY} in flight; new connections: ${HANDSHAKES} per run, ${HANDSHAKE_CONCURRENCY} in flight; ` +
    `${PODS} pods, 1 KiB bodies, TLS 1.3, ECDSA P-256; median of ${rounds.length} rounds` +
    (discarded ? ` (${discarded} more thrown away)` : ''),
);
console.log(
  'cores busy (median):  ' +
    names.map((k) => `${k}: client ${med(k, (r) => r.cores.client).toFixed(2)}, pods ${med(k, (r) => r.cores.pods).toFixed(2)}`).join('; '),
);
for (const name of names) {
  const conns = Math.max(...rounds.map((r) => r[name].connections));
  console.log(
    info(
      `${name} (client CPU ${med(name, (r) => r.cpuUs).toFixed(1)} us/req, ${conns} new conns)`,
      med(name, (r) => r.rps),
      'req/s',
      0,
    ),
  );
}
const RAW = 'undici.request over mTLS';
const MESH = 'mesh.request (ISTIO_MUTUAL)';
const RAW_HS = 'undici.request, new connection each';
const MESH_HS = 'mesh.request, new connection each';
console.log(row('S4: mesh.request / undici.request, both mTLS', ratio(MESH, RAW), 'x', '>=', 0.92));
console.log(info('new connections: mesh / undici (context)', ratio(MESH_HS, RAW_HS), 'x'));
const cpu = (k) => med(k, (r) => r.cpuUs);
console.log(info('client CPU per keep-alive request, mesh - undici', cpu(MESH) - cpu(RAW), 'us', 1));
console.log(info('connection setup per handshake (client CPU), undici', cpu(RAW_HS) - cpu(RAW), 'us', 0));
console.log(info('connection setup per handshake (client CPU), mesh', cpu(MESH_HS) - cpu(MESH), 'us', 0));
console.log(loadLine());

await Promise.all([...Object.values(meshes).map((m) => m.close()), ...Object.values(agents).map((a) => a.close())]);
await pods.stop();
rmSync(dir, { recursive: true, force: true });
