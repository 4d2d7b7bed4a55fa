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
// 3. Meanwhile this script mints new certificates and swaps them in, frontend and reviews in
//    turn, as the kubelet does when cert-manager or istiod renews a Secret, and follows each one:
//    the side's mesh picks it up, and a new frontend certificate shows up at reviews on the
//    connections that follow (connections already open finish with the old one).
// The frontend counts failed requests (there must be none) and which certificates each side saw.
//
// Env: ROTATIONS (default 5, frontend first and last), ROTATE_EVERY_MS (default 1000).
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cli = resolve(here, '../../dist/cli.js');
const rotations = Number(process.env.ROTATIONS ?? 5);
const rotateEveryMs = Number(process.env.ROTATE_EVERY_MS ?? 1000);
/** How long one rotation may take to be picked up and used, at most. */
const ROTATION_TIMEOUT_MS = 30_000;
const work = mkdtempSync(join(tmpdir(), 'sidecarless-mtls-example-'));
const FILES = ['cert-chain.pem', 'key.pem', 'root-cert.pem'];

function certs(args) {
  // The CLI warns on stderr that its CA is for development only; keep the output readable.
  execFileSync(process.execPath, [cli, 'certs', ...args], { stdio: ['ignore', 'ignore', 'ignore'] });
}

let generation = 0;
/**
 * Mints a certificate for `serviceAccount` and swaps it into `dir` as the kubelet updates a
 * Secret volume; returns its serial number.
 */
function issueInto(dir, serviceAccount) {
  const payload = `..${String(++generation).padStart(4, '0')}`;
  certs(['workload', '--ca', join(work, 'ca'), '--out', join(dir, payload), '--namespace', 'shop', '--service-account', serviceAccount, '--hours', '1']);
  const serial = new X509Certificate(readFileSync(join(dir, payload, 'cert-chain.pem'))).serialNumber;
  const previous = existsSync(join(dir, '..data')) ? readlinkSync(join(dir, '..data')) : undefined;
  symlinkSync(payload, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const file of FILES) if (!existsSync(join(dir, file))) symlinkSync(join('..data', file), join(dir, file));
  if (previous) rmSync(join(dir, previous), { recursive: true });
  return serial;
}

certs(['ca', '--out', join(work, 'ca')]);
const dirs = { frontend: join(work, 'frontend'), reviews: join(work, 'reviews') };
for (const [name, dir] of Object.entries(dirs)) {
  mkdirSync(dir, { recursive: true });
  issueInto(dir, name);
}
console.log(`development CA and workload certificates in ${work} (not for production)`);

const children = [];
/** Lines a child wrote on stderr (forwarded to ours), and waiters for one that matches. */
const stderrLines = [];
let stderrWaiters = [];
function start(script, env) {
  const child = spawn(process.execPath, [resolve(here, script)], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  children.push(child);
  createInterface({ input: child.stderr }).on('line', (line) => {
    console.error(line);
    stderrLines.push(line);
    stderrWaiters = stderrWaiters.filter((w) => (w.test(line) ? (w.resolve(), false) : true));
  });
  return child;
}
function stderrLine(test) {
  if (stderrLines.some(test)) return Promise.resolve();
  return new Promise((resolveLine) => stderrWaiters.push({ test, resolve: resolveLine }));
}
async function within(promise, what) {
  let timer;
  const timeout = new Promise(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ROTATION_TIMEOUT_MS} ms`)), ROTATION_TIMEOUT_MS)),
  );
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

let exitCode = 1;
try {
  const reviews = start('reviews.mjs', { CERTS_DIR: dirs.reviews });
  const port = await new Promise((resolvePort, reject) => {
    reviews.once('exit', (code) => reject(new Error(`reviews exited (${code})`)));
    createInterface({ input: reviews.stdout }).once('line', (line) => resolvePort(JSON.parse(line).listening));
  });
  console.log(`reviews listens on 127.0.0.1:${port} (PeerAuthentication STRICT)`);

  const frontend = start('frontend.mjs', { CERTS_DIR: dirs.frontend, REVIEWS_PORT: String(port) });
  let result;
  createInterface({ input: frontend.stdout }).on('line', (line) => {
    if (line.startsWith('RESULT ')) result = JSON.parse(line.slice('RESULT '.length));
    console.log(`[frontend] ${line}`);
  });
  const done = new Promise((resolveDone) => frontend.once('exit', resolveDone));
  await within(new Promise((resolveReady) => frontend.once('message', resolveReady)), 'the frontend starting');
  const stats = () =>
    new Promise((resolveStats) => {
      frontend.once('message', (m) => resolveStats(m.stats));
      frontend.send('stats');
    });
  /** Resolves once reviews has seen the frontend present certificate `serial`. */
  const presented = async (serial) => {
    while (!(await stats()).clientCertificates.includes(serial)) await sleep(50);
  };

  // Frontend and reviews in turn, while the frontend's requests flow.
  for (let i = 0; i < rotations; i++) {
    await sleep(rotateEveryMs);
    const name = i % 2 === 0 ? 'frontend' : 'reviews';
    const serial = issueInto(dirs[name], name);
    const started = performance.now();
    await within(
      stderrLine((line) => line === `[${name}] rotated to certificate ${serial.slice(-8)}`),
      `${name} picking up its new certificate`,
    );
    if (name === 'frontend') await within(presented(serial), 'reviews seeing the new frontend certificate');
    console.log(`rotated the ${name} certificate: in use after ${Math.round(performance.now() - started)} ms`);
  }
  frontend.send('stop');
  await done;

  if (!result) throw new Error('the frontend printed no result');
  console.log(
    `\n${result.ok} requests answered over mTLS, ${result.failed} failed; reviews saw ${result.clientCertificates.length} frontend certificates, the frontend saw ${result.serverCertificates.length} reviews certificates`,
  );
  console.log(`caller identity seen by reviews: ${result.callers.join(', ')}`);
  if (result.failed > 0) console.log(`first errors: ${result.errors.join('; ')}`);
  exitCode = result.failed === 0 && result.ok > 0 ? 0 : 1;
} catch (error) {
  console.error(error);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
process.exitCode = exitCode;
