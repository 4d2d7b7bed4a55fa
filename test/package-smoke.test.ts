import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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

  it('resolves sidecarless/inspect through the exports map, for import and require, loading nothing', async () => {
    // A file of the package requires itself by name, as an application would.
    const require = createRequire(resolve(root, 'package.json'));
    expect(require.resolve('sidecarless/inspect')).toBe(resolve(root, 'dist/inspect.cjs'));
    expect(Object.keys(require('sidecarless/inspect') as object)).toEqual([]); // types only
    const esm = (await import(pathToFileURL(resolve(root, 'dist/inspect.js')).href)) as Record<string, unknown>;
    expect(Object.keys(esm)).toEqual([]);
    // The declarations publish both (declared there or re-exported from a shared chunk, as the bundler chooses).
    for (const file of ['dist/inspect.d.ts', 'dist/inspect.d.cts']) {
      const types = readFileSync(resolve(root, file), 'utf8');
      expect(types).toMatch(/\b(interface|as) MeshInspection\b/);
      expect(types).toMatch(/\b(interface|as) Snapshot\b/);
    }
  });

  it('does not import framework, gRPC or Kubernetes packages from the root entry', () => {
    // sidecarless/grpc is the one entry that imports its package (@grpc/grpc-js, an optional peer).
    const esm = readdirSync(resolve(root, 'dist'))
      .filter((f) => f.endsWith('.js') && f !== 'cli.js' && f !== 'grpc.js')
      .map((f) => `dist/${f}`);
    const code = esm.map((file) => readFileSync(resolve(root, file), 'utf8')).join('\n');
    const imported = [...code.matchAll(/(?:from\s*|require\(\s*)["']([^"']+)["']/g)].map((m) => m[1]);
    expect(imported.filter((m) => /express|fastify|grpc|kubernetes/.test(m ?? ''))).toEqual([]);
    // The optional peer behind discovery: 'kubernetes' is loaded on demand only.
    const loaded = [...code.matchAll(/import\(\s*["']([^"'.][^"']*)["']/g)].map((m) => m[1]);
    expect(loaded.filter((m) => /express|fastify|grpc|kubernetes/.test(m ?? ''))).toEqual(['@kubernetes/client-node']);
    // CommonJS requires the same ESM build: nothing else.
    const cjs = readFileSync(resolve(root, 'dist/index.cjs'), 'utf8');
    expect([...cjs.matchAll(/require\(\s*["']([^"']+)["']/g)].map((m) => m[1])).toEqual(['./index.js']);
  });

  it('sidecarless/grpc imports @grpc/grpc-js itself, in both builds', () => {
    const code = readFileSync(resolve(root, 'dist/grpc.js'), 'utf8');
    expect([...code.matchAll(/from\s*["']([^"']+)["']/g)].map((m) => m[1])).toContain('@grpc/grpc-js');
    const cjs = readFileSync(resolve(root, 'dist/grpc.cjs'), 'utf8');
    expect([...cjs.matchAll(/require\(\s*["']([^"']+)["']/g)].map((m) => m[1])).toEqual(['./grpc.js']);
    const mod = createRequire(import.meta.url)(resolve(root, 'dist/grpc.cjs')) as Record<string, unknown>;
    expect(typeof mod.meshGrpcOptions).toBe('function');
    expect(typeof mod.meshServerInterceptor).toBe('function');
  });

  // What a program loads, seen by a module-loading hook in a child process (no timing involved).
  const loadedPackages = (entry: string, scenario: 'import' | 'files') =>
    JSON.parse(
      execFileSync(process.execPath, ['test/fixtures/loaded-packages.mjs', entry, scenario, 'examples/shop/mesh'], { cwd: root, encoding: 'utf8' }),
    ) as { before: string[]; control: boolean };

  for (const entry of ['dist/index.js', 'dist/index.cjs']) {
    it(`importing ${entry} loads no other package (undici loads with the first mesh)`, () => {
      const { before, control } = loadedPackages(entry, 'import');
      expect(before.filter((p) => !p.startsWith('node:'))).toEqual([]);
      expect(control).toBe(true); // the hook does see @kubernetes/client-node when it is loaded
    });

    it(`a mesh from files (${entry}) never loads @kubernetes/client-node`, () => {
      const { before, control } = loadedPackages(entry, 'files');
      expect(before).toContain('yaml'); // the files were read
      expect(before).not.toContain('@kubernetes/client-node');
      expect(control).toBe(true);
    });
  }

  it('importing sidecarless/grpc loads grpc-js and nothing of the transport (undici loads with the mesh)', () => {
    const { before } = loadedPackages('dist/grpc.js', 'import');
    expect(before).toContain('@grpc/grpc-js');
    expect(before).not.toContain('undici');
    expect(before).not.toContain('@opentelemetry/api');
  });

  it('runs the CLI binary', () => {
    const out = execFileSync(process.execPath, [resolve(root, 'dist/cli.js'), 'validate', '-n', 'shop', resolve(root, 'examples/shop/mesh')], {
      encoding: 'utf8',
    });
    expect(out).toMatch(/^valid:/);
  });
});
