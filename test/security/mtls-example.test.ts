import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

/** The newest modification time under `dir` (ms). */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

beforeAll(() => {
  // `npm test` builds before running vitest; a bare `vitest run` builds here when dist is missing or older than src.
  let built = 0;
  try {
    built = statSync(resolve(root, 'dist/index.js')).mtimeMs;
  } catch {
    // not built yet
  }
  if (built < newest(resolve(root, 'src'))) execFileSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' });
}, 120_000);

describe('examples/mtls (npm run example:mtls)', () => {
  it('two processes talk STRICT mTLS while both certificates rotate: no request fails, each new certificate is used on the connections that follow', () => {
    const run = spawnSync(process.execPath, ['examples/mtls/run.mjs'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, ROTATIONS: '5', ROTATE_EVERY_MS: '300' },
      timeout: 60_000,
    });
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    const line = run.stdout.split('\n').find((l) => l.includes('RESULT '));
    expect(line, run.stdout).toBeDefined();
    const result = JSON.parse(line!.slice(line!.indexOf('RESULT ') + 'RESULT '.length)) as {
      ok: number;
      failed: number;
      callers: string[];
      clientCertificates: string[];
      serverCertificates: string[];
    };
    expect(result.failed).toBe(0);
    expect(result.ok).toBeGreaterThan(0);
    expect(result.callers).toEqual(['spiffe://cluster.local/ns/shop/sa/frontend']);
    // Frontend, reviews, frontend, reviews, frontend: reviews saw each of the frontend's four
    // certificates, and the frontend's new connections met each of reviews' three.
    expect(result.clientCertificates).toHaveLength(4);
    expect(result.serverCertificates).toHaveLength(3);
    // Plaintext to the STRICT server, without the mesh, is refused.
    expect(run.stdout).toContain('plaintext call without the mesh: refused');
    expect(run.stderr).toContain('refused: plaintext');
  }, 90_000);
});
