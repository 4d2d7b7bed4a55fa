import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pods } from '../helpers/pods.js';

/**
 * A pending request keeps the process alive, nothing else does: a script that awaits a request
 * held by a fault delay or a retry back-off prints the response before it exits, and a script
 * whose requests are done exits by itself (no timer of the mesh is left). Each script runs in a
 * child process (the project's Node) on the mesh built from the current source; the pods are
 * served by this process. A child that does not exit by itself is killed after a generous limit,
 * which fails the test (the assertion is on how it exited, never on how long it took).
 */
const root = resolve(import.meta.dirname, '../..');
const LIMIT_MS = 20_000;
let dir: string;
let pods: Pods;
/** Requests per path, to answer the first one of a path with 503. */
const seen = new Map<string, number>();
/** Requests to /silent, never answered until the end. */
const silent: { destroy: () => void }[] = [];

beforeAll(async () => {
  // Inside the project, so that the bundle's imports resolve from its node_modules.
  await mkdir(join(root, '.tmp'), { recursive: true });
  dir = await mkdtemp(join(root, '.tmp', 'liveness-'));
  await build({
    entryPoints: [join(root, 'src/index.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile: join(dir, 'mesh.mjs'),
    logLevel: 'silent',
  });
  pods = await Pods.start(['127.0.0.2']);
  pods.behave = (req, res) => {
    const path = req.url ?? '';
    const n = (seen.get(path) ?? 0) + 1;
    seen.set(path, n);
    if (path === '/silent') {
      silent.push(res);
      return true;
    }
    if (!path.startsWith('/first-fails') || n > 1) return false;
    req.resume();
    res.writeHead(503, { 'content-type': 'text/plain' }).end('not yet');
    return true;
  };
}, 60_000);

afterAll(async () => {
  for (const res of silent) res.destroy();
  await pods.close();
  await rm(dir, { recursive: true, force: true });
});

/** The mesh configuration the scripts use: reviews on pod .2, with `route` as its VirtualService http entry. */
function meshConfig(route: string): string {
  return JSON.stringify([
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'ServiceEntry',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: {
        hosts: ['reviews.shop.svc.cluster.local'],
        location: 'MESH_INTERNAL',
        resolution: 'STATIC',
        ports: [{ number: pods.port, name: 'http', protocol: 'HTTP' }],
        endpoints: [{ address: '127.0.0.2' }],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: { hosts: ['reviews'], http: [JSON.parse(route) as unknown] },
    },
  ]);
}

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly killed: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `body` as an ES module script after `mesh` is created with `config` (and `options`, an
 * object literal's fields); resolves when the child exits.
 */
async function runScript(name: string, route: string, body: string, options = ''): Promise<Run> {
  const file = join(dir, `${name}.mjs`);
  await writeFile(
    file,
    `import { createMesh } from './mesh.mjs';
const mesh = await createMesh({ namespace: 'shop', watch: false, dns: false, telemetry: false, ${options} config: ${meshConfig(route)} });
const base = 'http://reviews:${pods.port}';
${body}
`,
  );
  return new Promise((resolveRun) => {
    const child = execFile(process.execPath, [file], { cwd: dir, timeout: LIMIT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolveRun({ code: child.exitCode, signal: child.signalCode, killed: error?.killed ?? false, stdout, stderr });
    });
  });
}

const DEFAULT_ROUTE = JSON.stringify({ route: [{ destination: { host: 'reviews' } }] });

describe.concurrent('a pending request keeps the process alive', () => {
  it('a request held by a fault delay is answered before the script exits', async () => {
    const route = JSON.stringify({
      fault: { delay: { fixedDelay: '300ms', percentage: { value: 100 } } },
      route: [{ destination: { host: 'reviews' } }],
    });
    const run = await runScript(
      'fault-delay',
      route,
      `
const res = await mesh.request(base + '/delayed');
console.log('answered', res.statusCode);
await res.body.text();
`,
    );
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('answered 200\n');
    expect(run.code).toBe(0);
  });

  it('a request waiting out a retry back-off is answered before the script exits', async () => {
    const route = JSON.stringify({
      route: [{ destination: { host: 'reviews' } }],
      retries: { attempts: 2, retryOn: '5xx', backoff: '300ms' },
    });
    const run = await runScript(
      'backoff',
      route,
      `
const res = await mesh.request(base + '/first-fails/backoff');
console.log('answered', res.statusCode, await res.body.text() !== '');
`,
    );
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('answered 200 true\n');
    expect(run.code).toBe(0);
  });
});

describe.concurrent('nothing else keeps it alive', () => {
  it('after requests with long route, per-try and back-off timers complete, the script exits by itself', async () => {
    const route = JSON.stringify({
      timeout: '600s',
      route: [{ destination: { host: 'reviews' } }],
      retries: { attempts: 3, perTryTimeout: '300s', retryOn: '5xx', backoff: '10ms' },
    });
    const run = await runScript(
      'completes',
      route,
      `
for (const path of ['/one', '/first-fails/completes', '/three']) {
  const res = await mesh.request(base + path);
  console.log(path, res.statusCode);
  await res.body.text();
}
`,
    );
    expect(run.killed).toBe(false);
    expect(run.signal).toBeNull();
    expect(run.stdout).toBe('/one 200\n/first-fails/completes 200\n/three 200\n');
    expect(run.code).toBe(0);
  });

  it('close() while a request waits out a long fault delay: it fails with ERR_MESH_CLOSED and the script exits by itself', async () => {
    const route = JSON.stringify({
      fault: { delay: { fixedDelay: '600s', percentage: { value: 100 } } },
      route: [{ destination: { host: 'reviews' } }],
    });
    const run = await runScript(
      'close-delay',
      route,
      `
const pending = mesh.request(base + '/long-delay').then((r) => 'answered ' + r.statusCode, (e) => e.code);
await new Promise((r) => setTimeout(r, 50));
const closing = mesh.close();
console.log(await pending);
await closing;
console.log('closed');
`,
    );
    expect(run.killed).toBe(false);
    expect(run.stdout).toBe('ERR_MESH_CLOSED\nclosed\n');
    expect(run.code).toBe(0);
  });

  it('close() with a request on a pod that never answers: aborted after the drain period, and the script exits by itself', async () => {
    const run = await runScript(
      'close-silent',
      DEFAULT_ROUTE,
      `
const pending = mesh.request(base + '/silent').then((r) => 'answered ' + r.statusCode, (e) => e.code);
await new Promise((r) => setTimeout(r, 50));
const closing = mesh.close();
console.log(await pending);
await closing;
console.log('closed');
`,
      'drainTimeoutMs: 200,',
    );
    expect(run.killed).toBe(false);
    expect(run.stdout).toBe('ERR_MESH_CLOSED\nclosed\n');
    expect(run.code).toBe(0);
  });

  it('a script that makes no request exits by itself, with the mesh open', async () => {
    const run = await runScript('idle', DEFAULT_ROUTE, `console.log('created');`);
    expect(run.killed).toBe(false);
    expect(run.stdout).toBe('created\n');
    expect(run.code).toBe(0);
  });
});
