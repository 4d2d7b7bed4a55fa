// Two services in two processes talking mutual TLS through the mesh, STRICT on the server, while
// their workload certificates rotate:
//
//   npm run example:mtls                       (or: npm run build && node examples/mtls/run.mjs)
//
// 1. `sidecarless certs` makes a development CA and a workload certificate for `frontend` and
//    for `reviews` (namespace shop), each in a directory laid out as a Kubernetes Secret volume
//    (files behind a `..data` symlink).
// 2. reviews.mjs serves STRICT mTLS; frontend.mjs calls it through the mesh (auto mTLS: Istio's
//    SNI and ALPN, reviews' identity checked) with eight requests in flight at all times.
// 3. Meanwhile this script mints new certificates and swaps them in, one side after the other,
//    as the kubelet does when cert-manager or istiod renews a Secret.
// The frontend counts failed requests (there must be none) and which certificates each side saw.
//
// Env: SECONDS_TO_RUN (default 6), ROTATE_EVERY_MS (default 1000).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, '../../dist/cli.js');
const seconds = Number(process.env.SECONDS_TO_RUN ?? 6);
const rotateEveryMs = Number(process.env.ROTATE_EVERY_MS ?? 1000);
const work = mkdtempSync(join(tmpdir(), 'sidecarless-mtls-example-'));
const FILES = ['cert-chain.pem', 'key.pem', 'root-cert.pem'];

function certs(args) {
  // The CLI warns on stderr that its CA is for development only; keep the output readable.
  execFileSync(process.execPath, [cli, 'certs', ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
}

let generation = 0;
/** Mints a certificate for `serviceAccount` and swaps it into `dir` as the kubelet updates a Secret volume. */
function issueInto(dir, serviceAccount) {
  const payload = `..${String(++generation).padStart(4, '0')}`;
  certs(['workload', '--ca', join(work, 'ca'), '--out', join(dir, payload), '--namespace', 'shop', '--service-account', serviceAccount, '--hours', '1']);
  const previous = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
  symlinkSync(payload, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const file of FILES) if (!existsSync(join(dir, file))) symlinkSync(join('..data', file), join(dir, file));
  if (previous) rmSync(join(dir, previous), { recursive: true });
}

certs(['ca', '--out', join(work, 'ca')]);
const dirs = { frontend: join(work, 'frontend'), reviews: join(work, 'reviews') };
for (const [name, dir] of Object.entries(dirs)) {
  mkdirSync(dir, { recursive: true });
  issueInto(dir, name);
}
console.log(`development CA and workload certificates in ${work} (not for production)`);

const children = [];
function start(script, env) {
  const child = spawn(process.execPath, [resolve(here, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

let exitCode = 1;
try {
  const reviews = start('reviews.mjs', { CERTS_DIR: dirs.reviews });
  const port = await new Promise((resolvePort, reject) => {
    reviews.once('exit', (code) => reject(new Error(`reviews exited (${code})`)));
    createInterface({ input: reviews.stdout }).once('line', (line) => resolvePort(JSON.parse(line).listening));
  });
  console.log(`reviews listens on 127.0.0.1:${port} (PeerAuthentication STRICT)`);

  const frontend = start('frontend.mjs', { CERTS_DIR: dirs.frontend, REVIEWS_PORT: String(port), SECONDS_TO_RUN: String(seconds) });
  let result;
  createInterface({ input: frontend.stdout }).on('line', (line) => {
    if (line.startsWith('RESULT ')) result = JSON.parse(line.slice('RESULT '.length));
    console.log(`[frontend] ${line}`);
  });
  const done = new Promise((resolveDone) => frontend.once('exit', resolveDone));

  // Rotate one side after the other while the frontend's requests flow.
  let side = 0;
  const rotation = setInterval(() => {
    const name = side++ % 2 === 0 ? 'frontend' : 'reviews';
    issueInto(dirs[name], name);
    console.log(`rotated the ${name} certificate`);
  }, rotateEveryMs);
  await done;
  clearInterval(rotation);

  if (!result) throw new Error('the frontend printed no result');
  console.log(`\n${result.ok} requests answered over mTLS, ${result.failed} failed; reviews saw ${result.clientCertificates} frontend certificates, frontend saw ${result.serverCertificates} reviews certificates`);
  console.log(`caller identity seen by reviews: ${result.callers.join(', ')}`);
  if (result.failed > 0) console.log(`first errors: ${result.errors.join('; ')}`);
  exitCode = result.failed === 0 && result.ok > 0 ? 0 : 1;
} catch (error) {
  console.error(error);
} finally {
  for (const child of children) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = exitCode;
