// bench/inbound-mtls: what the mesh's inbound server costs over node:https with the same
// certificates and client-certificate verification. The server runs in a child process (its CPU
// time per request is measured there); this process is the client.
//   raw:  https.createServer({ cert, key, ca, requestCert: true, rejectUnauthorized: true })
//   mesh: mesh.createServer() under PeerAuthentication STRICT (first-byte detection, TLS, checks,
//         identity attached), certificates from an Istio-layout directory (sidecarless certs)
// Two loads per round: keep-alive requests (REQUESTS at CONCURRENCY over CONNECTIONS connections)
// and new connections (HANDSHAKES, one request each, HANDSHAKE_CONCURRENCY at a time). Variants
// alternate, ROUNDS times; medians are printed.
// Run: npm run build && node bench/inbound-mtls.mjs
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const REQUESTS = Number(process.env.REQUESTS ?? 20_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const HANDSHAKES = Number(process.env.HANDSHAKES ?? 1_000);
const HANDSHAKE_CONCURRENCY = Number(process.env.HANDSHAKE_CONCURRENCY ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const here = fileURLToPath(new URL('.', import.meta.url));

const STRICT = {
  apiVersion: 'security.istio.io/v1',
  kind: 'PeerAuthentication',
  metadata: { name: 'default', namespace: 'istio-system' },
  spec: { mtls: { mode: 'STRICT' } },
};

async function serve(variant, dir) {
  const files = {
    cert: readFileSync(join(dir, 'server', 'cert-chain.pem')),
    key: readFileSync(join(dir, 'server', 'key.pem')),
    ca: readFileSync(join(dir, 'server', 'root-cert.pem')),
  };
  const handler = (_req, res) => res.end('ok');
  let server;
  if (variant === 'raw') {
    server = createServer({ ...files, requestCert: true, rejectUnauthorized: true }, handler);
  } else {
    const { createMesh } = await import(resolve(here, '../dist/index.js'));
    const mesh = await createMesh({ namespace: 'bench', config: [STRICT], certificates: { directory: join(dir, 'server') }, dns: false, watch: false });
    server = mesh.createServer(handler);
  }
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.send({ port: server.address().port });
  let mark = process.cpuUsage();
  process.on('message', (m) => {
    if (m === 'mark') {
      const used = process.cpuUsage(mark);
      mark = process.cpuUsage();
      process.send({ cpuUs: used.user + used.system });
    }
  });
}

async function keepAlive(port, client) {
  const pool = new Pool(`https://127.0.0.1:${port}`, { connections: CONNECTIONS, connect: { ...client, servername: undefined } });
  let left = REQUESTS;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) {
        const { body } = await pool.request({ path: '/', method: 'GET' });
        await body.text();
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  return REQUESTS / seconds;
}

async function handshakes(port, client) {
  let left = HANDSHAKES;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: HANDSHAKE_CONCURRENCY }, async () => {
      while (left-- > 0) {
        await new Promise((ok, fail) => {
          const req = httpsRequest({ host: '127.0.0.1', port, path: '/', agent: false, ...client }, (res) => {
            res.resume();
            res.on('end', ok);
          });
          req.on('error', fail);
          req.end();
        });
      }
    }),
  );
  return HANDSHAKES / ((performance.now() - start) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  if (process.env.BENCH_SERVER) return serve(process.env.BENCH_SERVER, process.env.BENCH_DIR);
  const dir = mkdtempSync(join(tmpdir(), 'sidecarless-bench-mtls-'));
  const cli = resolve(here, '../dist/cli.js');
  const quiet = { stdio: 'ignore' };
  execFileSync(
    process.execPath,
    [
      cli,
      'certs',
      'workload',
      '--ca',
      join(dir, 'ca'),
      '--out',
      join(dir, 'server'),
      '--namespace',
      'bench',
      '--service-account',
      'server',
      '--ip',
      '127.0.0.1',
    ],
    quiet,
  );
  execFileSync(
    process.execPath,
    [cli, 'certs', 'workload', '--ca', join(dir, 'ca'), '--out', join(dir, 'client'), '--namespace', 'bench', '--service-account', 'client'],
    quiet,
  );
  const client = {
    ca: readFileSync(join(dir, 'client', 'root-cert.pem')),
    cert: readFileSync(join(dir, 'client', 'cert-chain.pem')),
    key: readFileSync(join(dir, 'client', 'key.pem')),
  };
  const results = { raw: { rps: [], hs: [], cpuRps: [], cpuHs: [] }, mesh: { rps: [], hs: [], cpuRps: [], cpuHs: [] } };
  for (let round = 0; round < ROUNDS; round++) {
    for (const variant of round % 2 === 0 ? ['raw', 'mesh'] : ['mesh', 'raw']) {
      const child = fork(fileURLToPath(import.meta.url), { env: { ...process.env, BENCH_SERVER: variant, BENCH_DIR: dir } });
      const [{ port }] = await once(child, 'message');
      const mark = async () => {
        child.send('mark');
        const [{ cpuUs }] = await once(child, 'message');
        return cpuUs;
      };
      await keepAlive(port, client); // warm-up
      await mark();
      results[variant].rps.push(await keepAlive(port, client));
      results[variant].cpuRps.push((await mark()) / REQUESTS);
      await handshakes(port, client); // warm-up
      await mark();
      results[variant].hs.push(await handshakes(port, client));
      results[variant].cpuHs.push((await mark()) / HANDSHAKES);
      child.kill();
      await once(child, 'exit');
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const r = (v, k) => median(results[v][k]);
  console.log(
    `node ${process.version}, ${ROUNDS} rounds (medians); keep-alive: ${REQUESTS} requests, concurrency ${CONCURRENCY}, ${CONNECTIONS} connections; new connections: ${HANDSHAKES}, concurrency ${HANDSHAKE_CONCURRENCY}`,
  );
  console.log(
    `keep-alive requests/s     raw ${r('raw', 'rps').toFixed(0)}  mesh ${r('mesh', 'rps').toFixed(0)}  ratio ${(r('mesh', 'rps') / r('raw', 'rps')).toFixed(3)}`,
  );
  console.log(`server CPU per request    raw ${r('raw', 'cpuRps').toFixed(1)} us  mesh ${r('mesh', 'cpuRps').toFixed(1)} us`);
  console.log(
    `new mTLS connections/s    raw ${r('raw', 'hs').toFixed(0)}  mesh ${r('mesh', 'hs').toFixed(0)}  ratio ${(r('mesh', 'hs') / r('raw', 'hs')).toFixed(3)}`,
  );
  console.log(`server CPU per connection raw ${r('raw', 'cpuHs').toFixed(0)} us  mesh ${r('mesh', 'cpuHs').toFixed(0)} us`);
}

await main();
