import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { devToken } from '../../examples/inbound-common/dev-identity.mjs';
import { call, freePort } from '../helpers/inbound-apps.js';

/** The two inbound examples, started as the README starts them (on free ports), driven over HTTP. */
const root = resolve(import.meta.dirname, '../..');

interface Running {
  readonly child: ChildProcess;
  output: string;
}

function start(script: string, env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, [script], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const running: Running = { child, output: '' };
  return new Promise((resolveStart, reject) => {
    const onData = (d: Buffer): void => {
      running.output += d.toString();
      if (/listening on/.test(running.output)) resolveStart(running);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (running.output += d.toString()));
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}): ${running.output}`)));
  });
}

let ratings: Running;
let frontend: Running;
let port: number;

beforeAll(async () => {
  if (!existsSync(resolve(root, 'dist/express.js'))) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
  const ratingsPort = await freePort();
  port = await freePort();
  ratings = await start('examples/fastify/server.mjs', { PORT: String(ratingsPort) });
  frontend = await start('examples/express/server.mjs', { PORT: String(port), RATINGS_PORT: String(ratingsPort) });
}, 120_000);

afterAll(async () => {
  for (const r of [frontend, ratings]) {
    if (!r || r.child.exitCode !== null) continue;
    const exited = new Promise((done) => r.child.once('exit', done));
    r.child.kill('SIGTERM');
    await exited;
  }
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

describe('examples/express calling examples/fastify through the mesh', () => {
  it('authorization and JWT: /health is open, /reviews needs a token, ratings needs the reviewers group', async () => {
    expect((await call(port, '/health')).status).toBe(200);
    expect((await call(port, '/reviews/1')).body).toBe('RBAC: access denied');
    expect((await call(port, '/reviews/1', bearer('not-a-token'))).status).toBe(401);
    const ok = await call(port, '/reviews/1', bearer(await devToken('alice', ['reviewers'])));
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ review: 'review 1 for alice', rating: { id: '1', stars: 4, reader: 'alice' } });
    // The frontend lets bob in; ratings does not (not a reviewer), and says so through the frontend.
    const bob = await call(port, '/reviews/1', bearer(await devToken('bob', ['guests'])));
    expect([bob.status, bob.body]).toEqual([403, 'RBAC: access denied']);
    expect(ratings.output).toMatch(/\[mesh\] ERR_MESH_ACCESS_DENIED: GET \/ratings\/1 from 127\.0\.0\.1 denied: no ALLOW policy matched/);
  });

  it('traces: the frontend server span, its call to ratings and the ratings server span are one trace', async () => {
    await call(port, '/reviews/7', {
      headers: { authorization: `Bearer ${await devToken()}`, traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
    });
    // Each process prints a span when it ends, after the response it belongs to: wait for the lines.
    const frontendServer = /\[trace\] frontend SERVER GET trace=0af7651916cd43dd8448eb211c80319c span=\w+ parent=b7ad6b7169203331 status=200/;
    await expect.poll(() => frontendServer.test(frontend.output)).toBe(true);
    await expect.poll(() => ratings.output.includes('trace=0af7651916cd43dd8448eb211c80319c')).toBe(true);
    expect(ratings.output).toMatch(/\[trace\] ratings SERVER GET trace=0af7651916cd43dd8448eb211c80319c span=\w+ parent=\w+ status=200/);
  });

  it("the rate limit: ratings admits 5 requests a minute on its inbound listener, then answers Envoy's 429", async () => {
    const token = await devToken();
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await call(port, `/reviews/${i}`, bearer(token))).status);
    expect(statuses).toContain(429);
    const limited = await call(port, '/reviews/9', bearer(token));
    expect([limited.status, limited.body]).toEqual([429, 'local_rate_limited']);
  });
});
