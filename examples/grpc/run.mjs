// gRPC through the mesh, with no proxy: a client and two gRPC services on loopback "pods",
// mutual TLS everywhere from the workload certificates, configured by plain Istio YAML (mesh/):
//
//   npm run example:grpc                        (or: npm run build && node examples/grpc/run.mjs)
//
// frontend --(mesh:///greeter.shop:50051)--> greeter v1 (two pods, one flaky) | greeter v2
//                                             greeter --(mesh:///names.shop:50052)--> names
//
// - a canary split: the VirtualService sends 80% of the calls to greeter v1, 20% to v2;
// - a retry on UNAVAILABLE: one v1 pod answers every other call with UNAVAILABLE, the mesh retries
//   it on another pod, and the frontend sees no failure;
// - a deadline across two hops: the frontend's deadline reaches names through greeter, which
//   gives none of its own (it is in the async context of the call greeter is handling);
// - mTLS: ISTIO_MUTUAL to greeter, auto mTLS to names, servers with meshServerCredentials; names
//   allows greeter's SPIFFE identity only (AuthorizationPolicy), so the frontend calling it
//   directly gets PERMISSION_DENIED;
// - grpc.health.v1 on every server, SERVING while its mesh runs, asked through the mesh.
// Each service is a mesh of its own (its identity, its labels), as each would be its own pod.
// The last line is `[grpc] ok` when every check held (exit code 0), else the failed checks (1).
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, makeGenericClientConstructor, Metadata, Server, status } from '@grpc/grpc-js';
import { createMesh } from '../../dist/index.js';
import { addMeshHealthService, meshGrpcOptions, meshServerCredentials, meshServerInterceptor } from '../../dist/grpc.js';

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, '../../dist/cli.js');
const CALLS = Number(process.env.CALLS ?? 100);
const DEADLINE_MS = 3000;
const work = mkdtempSync(join(tmpdir(), 'sidecarless-grpc-example-'));
const log = (line) => console.log(`[grpc] ${line}`);

// --- a hand-written service definition: JSON messages, no .proto needed -----------------------
const json = { serialize: (value) => Buffer.from(JSON.stringify(value)), deserialize: (buffer) => JSON.parse(buffer.toString()) };
const unary = (path) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const GREETER = { greet: unary('/example.Greeter/Greet') };
const NAMES = { lookup: unary('/example.Names/Lookup') };
const GreeterClient = makeGenericClientConstructor(GREETER, 'Greeter');
const NamesClient = makeGenericClientConstructor(NAMES, 'Names');
// grpc.health.v1.Health/Check, its messages as protobuf bytes: field 1 the service, the status a varint (1: SERVING).
const raw = (buffer) => buffer;
const HealthClient = makeGenericClientConstructor(
  {
    check: {
      path: '/grpc.health.v1.Health/Check',
      requestStream: false,
      responseStream: false,
      requestSerialize: raw,
      requestDeserialize: raw,
      responseSerialize: raw,
      responseDeserialize: raw,
    },
  },
  'Health',
);
const healthRequest = (service) => Buffer.concat([Buffer.from([0x0a, service.length]), Buffer.from(service)]);
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

const invoke = (client, method, request, deadlineMs) =>
  new Promise((done) => {
    client[method](request, new Metadata(), deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs }, (error, reply) =>
      done(error ? { error } : { reply }),
    );
  });

/** The SPIFFE ID of the client certificate the server verified (the mesh interceptor authorizes on it). */
const callerOf = (call) => /URI:(spiffe:\/\/[^,\s]+)/.exec(call.getAuthContext().sslPeerCertificate?.subjectaltname ?? '')?.[1] ?? null;

// --- workload certificates from the development CA (`sidecarless certs`) ---------------------
const certs = (args) => execFileSync(process.execPath, [cli, 'certs', ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
certs(['ca', '--out', join(work, 'ca')]);
for (const sa of ['frontend', 'greeter', 'names'])
  certs(['workload', '--ca', join(work, 'ca'), '--out', join(work, sa), '--namespace', 'shop', '--service-account', sa, '--hours', '1']);

// --- the pods: each service's servers, bound first so the WorkloadEntries can name their ports --
/** A gRPC server on `address` with the mesh's mTLS credentials and inbound policy (AuthorizationPolicy...). */
async function serve(mesh, address, service, handlers) {
  const server = new Server({ interceptors: [meshServerInterceptor(mesh)] });
  server.addService(service, handlers);
  addMeshHealthService(server, mesh, { services: [service === GREETER ? 'example.Greeter' : 'example.Names'] });
  const port = await new Promise((done, fail) =>
    server.bindAsync(`${address}:0`, meshServerCredentials(mesh), (error, bound) => (error ? fail(error) : done(bound))),
  );
  return { server, port };
}

const workload = (name, address, port, labels, serviceAccount) => ({
  apiVersion: 'networking.istio.io/v1',
  kind: 'WorkloadEntry',
  metadata: { name, namespace: 'shop' },
  spec: { address, ports: { grpc: port }, labels, serviceAccount },
});

/** The services' configuration, the same in every workload (as a cluster's), plus the WorkloadEntries. */
const config = (entries) => [resolve(here, 'mesh'), ...entries];
const meshOf = (sa, entries) =>
  createMesh({ namespace: 'shop', labels: { app: sa }, config: config([...entries]), certificates: { directory: join(work, sa) }, watch: false, dns: false });

// A server's mesh is made before it listens; the WorkloadEntries of its port go to its callers' meshes.
const namesMesh = await meshOf('names', []);
const names = await serve(namesMesh, '127.0.0.5', NAMES, {
  lookup: (call, reply) => {
    const deadline = call.getDeadline();
    const left = deadline instanceof Date ? deadline.getTime() - Date.now() : Number.isFinite(deadline) ? deadline - Date.now() : null;
    reply(null, { fullName: `${call.request.name} the Great`, deadlineMs: left, caller: callerOf(call) });
  },
});

const greeterPods = [
  { address: '127.0.0.2', version: 'v1', flaky: false },
  { address: '127.0.0.3', version: 'v1', flaky: true },
  { address: '127.0.0.4', version: 'v2', flaky: false },
];
const entries = [workload('names-1', '127.0.0.5', names.port, { app: 'names' }, 'names')];
// greeter's mesh knows names (its WorkloadEntry) before greeter serves.
const greeterMesh = await meshOf('greeter', entries);
const toNames = new NamesClient('mesh:///names.shop:50052', credentials.createInsecure(), meshGrpcOptions(greeterMesh));
let flakyCalls = 0;
let flakyRefused = 0;
for (const pod of greeterPods) {
  const { port } = await serve(greeterMesh, pod.address, GREETER, {
    greet: async (call, reply) => {
      if (pod.flaky && flakyCalls++ % 2 === 0) {
        flakyRefused++;
        reply({ code: status.UNAVAILABLE, details: 'flaky pod: try another one' });
        return;
      }
      // No deadline given: the one of the call being handled applies (the frontend's).
      const looked = await invoke(toNames, 'lookup', { name: call.request.name });
      if (looked.error) {
        reply({ code: looked.error.code, details: `names: ${looked.error.details}` });
        return;
      }
      reply(null, { greeting: `Hello, ${looked.reply.fullName}`, pod: pod.address, version: pod.version, caller: callerOf(call), names: looked.reply });
    },
  });
  pod.port = port;
  entries.push(workload(`greeter-${pod.address.split('.').at(-1)}`, pod.address, port, { app: 'greeter', version: pod.version }, 'greeter'));
}

// --- the client: frontend calls greeter through its own mesh ---------------------------------
const frontendMesh = await meshOf('frontend', entries);
const greeter = new GreeterClient('mesh:///greeter.shop:50051', credentials.createInsecure(), meshGrpcOptions(frontendMesh));
const directToNames = new NamesClient('mesh:///names.shop:50052', credentials.createInsecure(), meshGrpcOptions(frontendMesh));

const byVersion = { v1: 0, v2: 0 };
const failures = [];
let first;
for (let i = 0; i < CALLS; i++) {
  const outcome = await invoke(greeter, 'greet', { name: `caller ${i}` }, DEADLINE_MS);
  if (outcome.error) failures.push(`${outcome.error.code} ${outcome.error.details}`);
  else {
    byVersion[outcome.reply.version]++;
    first ??= outcome.reply;
  }
}
const denied = await invoke(directToNames, 'lookup', { name: 'frontend' }, DEADLINE_MS);
const greeterHealth = new HealthClient('mesh:///greeter.shop:50051', credentials.createInsecure(), meshGrpcOptions(frontendMesh));
const health = await invoke(greeterHealth, 'check', healthRequest('example.Greeter'), DEADLINE_MS);
const healthStatus = health.error ? `${status[health.error.code]} (${health.error.details})` : SERVING_STATUS[health.reply[1] ?? 0];

log(`${CALLS} calls from frontend to mesh:///greeter.shop:50051 (deadline ${DEADLINE_MS} ms each), mutual TLS on every hop`);
log(`canary split: v1 ${byVersion.v1}, v2 ${byVersion.v2} (VirtualService weights 80/20)`);
log(`retries: the flaky v1 pod answered UNAVAILABLE ${flakyRefused} times; calls that failed at the frontend: ${failures.length}`);
log(`deadline: names, two hops away, had ${first?.names.deadlineMs ?? '?'} ms of the frontend's ${DEADLINE_MS} left`);
log(`identities: greeter saw ${first?.caller}; names saw ${first?.names.caller}`);
log(`frontend calling names directly: ${denied.error ? `${status[denied.error.code]} (${denied.error.details})` : 'answered (it should not have been)'}`);
log(`health: example.Greeter ${healthStatus} (grpc.health.v1, asked through the mesh)`);
log(`a reply: ${JSON.stringify(first?.greeting)} from ${first?.pod} (${first?.version})`);

const problems = [];
if (failures.length > 0) problems.push(`${failures.length} calls failed: ${failures.slice(0, 3).join('; ')}`);
if (byVersion.v2 < CALLS * 0.05 || byVersion.v2 > CALLS * 0.4) problems.push(`v2 got ${byVersion.v2} of ${CALLS} calls, far from 20%`);
if (flakyRefused === 0) problems.push('the flaky pod was never called: no retry shown');
const left = first?.names.deadlineMs;
if (typeof left !== 'number' || left <= 0 || left > DEADLINE_MS) problems.push(`names saw no deadline within the frontend's (${left})`);
if (first?.caller !== 'spiffe://cluster.local/ns/shop/sa/frontend' || first?.names.caller !== 'spiffe://cluster.local/ns/shop/sa/greeter')
  problems.push("the servers did not see the callers' mTLS identities");
if (denied.error?.code !== status.PERMISSION_DENIED) problems.push('names did not deny the frontend');
if (healthStatus !== 'SERVING') problems.push(`greeter's health: ${healthStatus}`);

for (const client of [greeter, directToNames, toNames, greeterHealth]) client.close();
await Promise.all([frontendMesh.close(), greeterMesh.close(), namesMesh.close()]);
rmSync(work, { recursive: true, force: true });
if (problems.length > 0) {
  for (const p of problems) log(`FAILED: ${p}`);
  process.exit(1);
}
log('ok');
process.exit(0);
