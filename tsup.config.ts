import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library: ESM and CJS, each with its own declarations (.d.ts / .d.cts).
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node22',
    platform: 'node',
    splitting: false,
    treeshake: true,
    // Loaded on demand (SHARED rate limits; discovery: 'kubernetes'); the user installs them (devDependencies here).
    external: ['ioredis', '@kubernetes/client-node'],
  },
  {
    // The server integrations: each its own subpath, loading nothing of the framework it serves.
    entry: { express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: false,
    target: 'node22',
    platform: 'node',
    splitting: false,
    treeshake: true,
    external: ['fastify', 'express'],
  },
  {
    // The CLI: ESM only, it is a bin, not an import.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    dts: false,
    sourcemap: true,
    clean: false,
    target: 'node22',
    platform: 'node',
    banner: { js: '#!/usr/bin/env node' },
    external: ['ioredis', '@kubernetes/client-node'],
  },
]);
