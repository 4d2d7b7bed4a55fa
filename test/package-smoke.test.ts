import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './helpers/built-package.js';

const root = resolve(import.meta.dirname, '..');

// `npm test` builds before running vitest; a bare `vitest run` builds here when dist/ is stale.
beforeAll(ensureBuilt, 120_000);

describe('the built package', () => {
  it('loads through the ESM entry', async () => {
    const mod = (await import(pathToFileURL(resolve(root, 'dist/index.js')).href)) as Record<string, unknown>;
    expect(typeof mod.createMesh).toBe('function');
    expect(typeof mod.MeshConfigError).toBe('function');
  });

  it('loads through the CJS entry', () => {
    const mod = createRequire(import.meta.url)(resolve(root, 'dist/index.cjs')) as Record<string, unknown>;
    expect(typeof mod.createMesh).toBe('function');
  });

  it('does not import framework, gRPC or Kubernetes packages from the root entry', () => {
    for (const file of ['dist/index.js', 'dist/index.cjs']) {
      const code = readFileSync(resolve(root, file), 'utf8');
      const imported = [...code.matchAll(/(?:from\s*|require\(\s*)["']([^"']+)["']/g)].map((m) => m[1]);
      expect(imported.filter((m) => /express|fastify|grpc|kubernetes/.test(m ?? '')), file).toEqual([]);
      // The optional peer behind discovery: 'kubernetes' is loaded on demand only.
      const loaded = [...code.matchAll(/import\(\s*["']([^"']+)["']/g)].map((m) => m[1]);
      expect(loaded.filter((m) => /express|fastify|grpc|kubernetes/.test(m ?? '')), file).toEqual(['@kubernetes/client-node']);
    }
  });

  it('runs the CLI binary', () => {
    const out = execFileSync(process.execPath, [resolve(root, 'dist/cli.js'), 'validate', '-n', 'shop', resolve(root, 'examples/shop/mesh')], { encoding: 'utf8' });
    expect(out).toMatch(/^valid:/);
  });
});
