// bench/grpc-streaming (S5, streaming part): grpc-js server-streaming and bidi throughput through
// the mesh (mesh:/// target, the mesh's resolver, balancer and interceptor) against a raw grpc-js
// client to the same server, side by side in one run.
// The server (grpc-js, JSON messages, one loopback pod) runs in a child process, so this process
// holds only the clients. Per variant and round:
//   - server streaming: STREAMS concurrent calls, each answered with MESSAGES messages of SIZE bytes;
//   - bidi: STREAMS concurrent calls, each sending MESSAGES messages (at most WINDOW unanswered),
//     the server answering each one.
// The variants alternate (raw first in even rounds, mesh first in odd ones), ROUNDS times; the
// ratio (mesh messages/s over raw messages/s) is taken within each round, and the median round's
// is the figure (target: within 5%, i.e. >= 0.95x).
// Run: npm run bench:grpc-streaming (tiny check: MESSAGES=200 STREAMS=2 ROUNDS=1 WARMUP=0)
import { Buffer } from 'node:buffer';
import { fork } from 'node:child_process';
import { credentials, makeGenericClientConstructor, Metadata, Server, ServerCredentials } from '@grpc/grpc-js';
import { createMesh } from '../dist/index.js';
import { meshGrpcOptions } from '../dist/grpc.js';
import { grpcService } from './lib/mesh-config.mjs';

const MESSAGES = Number(process.env.MESSAGES ?? 20_000);
const STREAMS = Number(process.env.STREAMS ?? 4);
const SIZE = Number(process.env.SIZE ?? 100);
const WINDOW = Number(process.env.WINDOW ?? 64);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const WARMUP = Number(process.env.WARMUP ?? 2);
const ADDRESS = '127.0.0.2';

const json = { serialize: (v) => Buffer.from(JSON.stringify(v)), deserialize: (b) => JSON.parse(b.toString()) };
const method = (path, requestStream, responseStream) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});
const service = {
  list: method('/bench.Stream/List', false, true),
  chat: method('/bench.Stream/Chat', true, true),
};

if (process.argv[2] === 'server') {
  const pad = 'x'.repeat(SIZE);
  const server = new Server();
  server.addService(service, {
    // Written with backpressure: the next message once the stream has room.
    list: (call) => {
      const count = call.request.count;
      let i = 0;
      const more = () => {
        while (i < count) if (!call.write({ i: i++, pad })) return void call.once('drain', more);
        call.end();
      };
      more();
    },
    chat: (call) => {
      call.on('data', (m) => call.write(m));
      call.on('end', () => call.end());
    },
  });
  server.bindAsync(`${ADDRESS}:0`, ServerCredentials.createInsecure(), (error, port) => {
    if (error) throw error;
    process.send({ port });
  });
} else {
  const child = fork(new URL(import.meta.url).pathname, ['server'], { env: { ...process.env, SIZE: String(SIZE) } });
  const port = await new Promise((resolve) => child.once('message', (m) => resolve(m.port)));
  const mesh = await createMesh({
    namespace: 'bench',
    dns: false,
    watch: false,
    config: [grpcService({ name: 'stream', port, address: ADDRESS })],
  });
  const Client = makeGenericClientConstructor(service, 'Stream');
  const raw = new Client(`${ADDRESS}:${port}`, credentials.createInsecure());
  const meshed = new Client(`mesh:///stream.bench:${port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
  const pad = 'x'.repeat(SIZE);

  /** One server stream: resolves with the number of messages received. */
  const list = (client) =>
    new Promise((resolve, reject) => {
      let n = 0;
      const call = client.list({ count: MESSAGES }, new Metadata());
      call.on('data', () => n++);
      call.on('error', reject);
      call.on('end', () => (n === MESSAGES ? resolve(n) : reject(new Error(`server stream ended after ${n} of ${MESSAGES}`))));
    });

  /** One bidi stream: MESSAGES sent, at most WINDOW unanswered; resolves with the answers received. */
  const chat = (client) =>
    new Promise((resolve, reject) => {
      let sent = 0;
      let received = 0;
      const call = client.chat(new Metadata());
      const fill = () => {
        while (sent < MESSAGES && sent - received < WINDOW) call.write({ i: sent++, pad });
        if (sent === MESSAGES && received === MESSAGES) call.end();
      };
      call.on('data', () => {
        received++;
        fill();
      });
      call.on('error', reject);
      call.on('end', () => (received === MESSAGES ? resolve(received) : reject(new Error(`bidi stream ended after ${received} of ${MESSAGES}`))));
      fill();
    });

  /** Messages per second of STREAMS concurrent streams of one kind. */
  async function run(kind, client) {
    const start = performance.now();
    const counts = await Promise.all(Array.from({ length: STREAMS }, () => kind(client)));
    const total = counts.reduce((a, b) => a + b, 0);
    return total / ((performance.now() - start) / 1000);
  }

  const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
  const summary = [];
  for (const [name, kind] of [
    ['server streaming', list],
    ['bidi', chat],
  ]) {
    for (let i = 0; i < WARMUP; i++) {
      await run(kind, raw);
      await run(kind, meshed);
    }
    const ratios = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [raw, meshed] : [meshed, raw];
      const rates = new Map();
      for (const client of order) rates.set(client, await run(kind, client));
      const ratio = rates.get(meshed) / rates.get(raw);
      ratios.push(ratio);
      console.log(`${name} round ${round + 1}: raw ${rates.get(raw).toFixed(0)} msg/s, mesh ${rates.get(meshed).toFixed(0)} msg/s, ratio ${ratio.toFixed(3)}`);
    }
    summary.push(`${name}: mesh/raw = ${median(ratios).toFixed(3)}x`);
  }
  console.log(
    `${STREAMS} streams x ${MESSAGES} messages of ${SIZE} bytes, bidi window ${WINDOW}, median of ${ROUNDS} rounds: ${summary.join('; ')} (S5 target: within 5%, >= 0.95x)`,
  );
  raw.close();
  meshed.close();
  await mesh.close();
  child.kill();
}
