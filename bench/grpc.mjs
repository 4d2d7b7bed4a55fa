// bench/grpc (S5, unary part): grpc-js unary calls through the mesh (mesh:/// target, the mesh's
// resolver, balancer and interceptor) against a raw grpc-js client to the same server.
// The server (grpc-js, JSON messages, one per loopback pod) runs in a child process, so this
// process holds only the clients. CALLS unary calls at CONCURRENCY per variant per round; the
// variants alternate, ROUNDS times; the ratio (mesh calls/s over raw calls/s) is taken within each
// round, and the median round's is the figure (target >= 0.93x). It also prints the client CPU
// per call the mesh adds (process.cpuUsage of this process around each run; the server is a
// child), the median of the per-round differences: the throughput ratio also moves with the
// server's share of the two cores.
// Run: npm run bench:grpc
import { Buffer } from 'node:buffer';
import { fork } from 'node:child_process';
import { credentials, InterceptingCall, makeGenericClientConstructor, Metadata, Server, ServerCredentials } from '@grpc/grpc-js';
import { createMesh } from '../dist/index.js';
import { meshGrpcOptions } from '../dist/grpc.js';
import { grpcService } from './lib/mesh-config.mjs';
import { pairedLine, quartiles } from './lib/paired.mjs';

const CALLS = Number(process.env.CALLS ?? 5_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const ADDRESS = '127.0.0.2';

const json = { serialize: (v) => Buffer.from(JSON.stringify(v)), deserialize: (b) => JSON.parse(b.toString()) };
const service = {
  echo: {
    path: '/bench.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

if (process.argv[2] === 'server') {
  const server = new Server();
  server.addService(service, { echo: (call, callback) => callback(null, { ok: true, n: call.request.n }) });
  server.bindAsync(`${ADDRESS}:0`, ServerCredentials.createInsecure(), (error, port) => {
    if (error) throw error;
    process.send({ port });
  });
} else {
  const child = fork(new URL(import.meta.url).pathname, ['server']);
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
  const mesh = await createMesh({
    namespace: 'bench',
    dns: false,
    watch: false,
    config: [grpcService({ name: 'echo', port, address: ADDRESS })],
  });
  const Client = makeGenericClientConstructor(service, 'Echo');
  const raw = new Client(`${ADDRESS}:${port}`, credentials.createInsecure());
  // The floor any grpc-js interceptor costs: one that does nothing.
  const noop = new Client(`${ADDRESS}:${port}`, credentials.createInsecure(), { interceptors: [(options, next) => new InterceptingCall(next(options))] });
  const meshed = new Client(`mesh:///echo.bench:${port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
  const call = (client, n) => new Promise((resolve, reject) => client.echo({ n }, new Metadata(), (e, r) => (e ? reject(e) : resolve(r))));
  async function run(client) {
    let next = 0;
    const start = performance.now();
    const cpu0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < CALLS) await call(client, next++);
      }),
    );
    const cpu = process.cpuUsage(cpu0);
    cpuPerCall.set(client, (cpu.user + cpu.system) / CALLS);
    return CALLS / ((performance.now() - start) / 1000);
  }
  // The client's CPU per call of each variant's last run (this process only: the server is a child).
  const cpuPerCall = new Map();
  for (let i = 0; i < 3; i++) {
    await run(raw);
    await run(noop);
    await run(meshed);
  }
  const ratios = [];
  const noopRatios = [];
  const addedCpu = [];
  const noopCpu = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [raw, noop, meshed] : [meshed, noop, raw];
    const rates = new Map();
    for (const client of order) rates.set(client, await run(client));
    const ratio = rates.get(meshed) / rates.get(raw);
    ratios.push(ratio);
    noopRatios.push(rates.get(noop) / rates.get(raw));
    addedCpu.push(cpuPerCall.get(meshed) - cpuPerCall.get(raw));
    noopCpu.push(cpuPerCall.get(noop) - cpuPerCall.get(raw));
    console.log(
      `round ${round + 1}: raw ${rates.get(raw).toFixed(0)} calls/s, no-op interceptor ${rates.get(noop).toFixed(0)}, mesh ${rates.get(meshed).toFixed(0)} calls/s, ratio ${ratio.toFixed(3)}`,
    );
  }
  const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
  console.log(
    `unary, ${CALLS} calls at concurrency ${CONCURRENCY}, median of ${ROUNDS} rounds: mesh/raw = ${median(ratios).toFixed(3)}x (S5 target >= 0.93x); a no-op grpc-js interceptor alone: ${median(noopRatios).toFixed(3)}x`,
  );
  console.log(pairedLine('client CPU per call added by the mesh (mesh - raw)', quartiles(addedCpu), 'us'));
  console.log(pairedLine('client CPU per call added by a no-op interceptor (noop - raw)', quartiles(noopCpu), 'us'));
  raw.close();
  noop.close();
  meshed.close();
  await mesh.close();
  child.kill();
}
