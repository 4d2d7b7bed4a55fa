import { defineConfig } from 'tsup';

export default defineConfig([
  {
    // The library: ESM and CJS, each with its own declarations (.d.ts / .d.cts). The server
    // integrations are subpaths of their own that load nothing of the framework they serve.
    entry: { index: 'src/index.ts', express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node22',
    platform: 'node',
    splitting: false,
    treeshake: true,
    // Loaded on demand (SHARED rate limits; discovery: 'kubernetes'); the user installs them (devDependencies here).
    external: ['ioredis', '@kubernetes/client-node', 'fastify', 'express'],
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
