// bench/inbound: what the inbound path costs a server, side by side in one run.
//   bare:      http.createServer(handler)
//   mesh-0:    http.createServer(withMesh(mesh, handler)), no policy (path normalization, the
//              request view, the server span and metrics when an SDK is registered: none here)
//   mesh-10:   the same with 10 AuthorizationPolicies (9 DENY that do not match, 1 ALLOW that
//              does: every rule is evaluated for each request)
//   mesh-100:  the same with 100
// The server runs in a child process (its CPU time per request is measured there); this process
// is the client: REQUESTS keep-alive requests at CONCURRENCY over CONNECTIONS connections.
// Variants alternate, ROUNDS times; medians are printed.
// Run: npm run bench:inbound
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const REQUESTS = Number(process.env.REQUESTS ?? 30_000);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 32);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const VARIANTS = ['bare', 'mesh-0', 'mesh-10', 'mesh-100'];
const here = fileURLToPath(new URL('.', import.meta.url));

/** `count` policies: all but the last DENY and never match the benchmark's requests; the last ALLOWs them. */
function policies(count) {
  const out = [];
  for (let i = 0; i < count - 1; i++) {
    out.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: `deny-${i}`, namespace: 'bench' },
      spec: {
        action: 'DENY',
        rules: [
          { to: [{ operation: { paths: [`/admin-${i}`, `/admin-${i}/*`], methods: ['POST', 'DELETE'] } }] },
          { when: [{ key: 'request.headers[x-blocked]', values: [`team-${i}`] }] },
          { from: [{ source: { ipBlocks: [`10.${i % 250}.0.0/16`] } }] },
        ],
      },
    });
  }
  if (count > 0) {
    out.push({
      apiVersion: 'security.istio.io/v1',
      kind: 'AuthorizationPolicy',
      metadata: { name: 'allow-api', namespace: 'bench' },
      spec: { action: 'ALLOW', rules: [{ to: [{ operation: { methods: ['GET'], paths: ['/api/*'] } }] }] },
    });
  }
  return out;
}

async function serve(variant) {
  const handler = (_req, res) => res.end('ok');
  let server;
  if (variant === 'bare') {
    server = createServer(handler);
  } else {
    const { createMesh } = await import(resolve(here, '../dist/index.js'));
    const { withMesh } = await import(resolve(here, '../dist/http.js'));
    const mesh = await createMesh({ namespace: 'bench', config: policies(Number(variant.split('-')[1])), certificates: false, dns: false, watch: false });
    server = createServer(withMesh(mesh, handler));
  }
  server.keepAliveTimeout = 60_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.send({ port: server.address().port });
  // SIGINT: exit normally, so that a --cpu-prof profile is written.
  process.once('SIGINT', () => process.exit(0));
  let mark = process.cpuUsage();
  process.on('message', (m) => {
    if (m === 'mark') {
      const used = process.cpuUsage(mark);
      mark = process.cpuUsage();
      process.send({ cpuUs: used.user + used.system });
    }
  });
}

async function load(port) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1 });
  let left = REQUESTS;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (left-- > 0) {
        const { statusCode, body } = await pool.request({ path: '/api/items/42?view=full', method: 'GET', headers: { 'x-request-id': 'bench' } });
        await body.text();
        if (statusCode !== 200) throw new Error(`unexpected ${statusCode}`);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  await pool.close();
  return REQUESTS / seconds;
}

async function round(variant) {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', variant], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: process.env.PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROFILE_DIR}`] : [],
  });
  const [{ port }] = await once(child, 'message');
  await load(port); // warm-up
  child.send('mark');
  await once(child, 'message');
  const rps = await load(port);
  child.send('mark');
  const [{ cpuUs }] = await once(child, 'message');
  child.kill('SIGINT');
  await once(child, 'exit');
  return { rps, cpuUsPerRequest: cpuUs / REQUESTS };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

if (process.argv[2] === '--serve') {
  await serve(process.argv[3]);
} else {
  const results = Object.fromEntries(VARIANTS.map((v) => [v, []]));
  for (let r = 0; r < ROUNDS; r++) for (const v of VARIANTS) results[v].push(await round(v));
  const bare = median(results.bare.map((x) => x.rps));
  const bareCpu = median(results.bare.map((x) => x.cpuUsPerRequest));
  console.log(`bench/inbound: ${REQUESTS} keep-alive GETs per round, ${CONCURRENCY} in flight over ${CONNECTIONS} connections, ${ROUNDS} rounds, medians`);
  console.log('variant    req/s     vs bare   server CPU/request   vs bare');
  for (const v of VARIANTS) {
    const rps = median(results[v].map((x) => x.rps));
    const cpu = median(results[v].map((x) => x.cpuUsPerRequest));
    console.log(
      `${v.padEnd(9)} ${rps.toFixed(0).padStart(7)}   ${((rps / bare) * 100).toFixed(1).padStart(6)}%   ${cpu.toFixed(1).padStart(8)} µs        ${cpu >= bareCpu ? '+' : ''}${(cpu - bareCpu).toFixed(1)} µs`,
    );
  }
}
