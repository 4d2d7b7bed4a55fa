import { defineConfig } from 'tsup';

// Loaded on demand (SHARED rate limits; discovery: 'kubernetes'), or the framework an integration
// serves; the user installs them (devDependencies here).
const external = ['ioredis', '@kubernetes/client-node', 'fastify', 'express'];

export default defineConfig([
  {
    // The library and the CLI, ESM: split, so that code behind a dynamic import() (the
    // configuration pipeline, Kubernetes, telemetry, the YAML parser, the admin server) is a chunk
    // of its own, loaded only when used, and the CLI shares the library's chunks instead of carrying
    // a copy (its #! line is in src/cli/bin.ts). The server integrations are subpaths of their own
    // that load nothing of the framework they serve. No source maps: the code is not minified, and
    // maps would double the package.
    entry: { index: 'src/index.ts', express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts', cli: 'src/cli/bin.ts' },
    format: ['esm'],
    dts: { entry: { index: 'src/index.ts', express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts' } },
    sourcemap: false,
    clean: true,
    target: 'node22',
    platform: 'node',
    splitting: true,
    treeshake: true,
    external,
  },
  {
    // CommonJS: only the declarations (.d.cts) are built here. Each .cjs file is one line that
    // requires the ESM build (require(esm), which every Node the package supports has; written by
    // scripts/build.mjs), so an application that loads both module systems gets one copy of the
    // mesh: one deadline context, one set of error classes, and a package half the size.
    entry: { index: 'src/index.ts', express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts' },
    format: ['cjs'],
    dts: { only: true },
    clean: false,
    target: 'node22',
    platform: 'node',
    external,
  },
]);
