import { defineConfig } from 'tsup';

// Loaded on demand (SHARED rate limits; discovery: 'kubernetes'), or the framework an integration
// serves; the user installs them (devDependencies here).
const external = ['ioredis', '@kubernetes/client-node', 'fastify', 'express', '@grpc/grpc-js'];

export default defineConfig([
  {
    // The library and the CLI, ESM: split, so that code behind a dynamic import() (the
    // configuration pipeline, Kubernetes, telemetry, the YAML parser, the admin server) is a chunk
    // of its own, loaded only when used, and the CLI shares the library's chunks instead of carrying
    // a copy (its #! line is in src/cli/bin.ts). The server integrations are subpaths of their own
    // that load nothing of the framework they serve. No source maps: the code is not minified, and
    // maps would double the package.
    entry: { index: 'src/index.ts', express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts', grpc: 'src/grpc/index.ts', cli: 'src/cli/bin.ts' },
    format: ['esm'],
    dts: { entry: { index: 'src/index.ts', express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts', grpc: 'src/grpc/index.ts' } },
    sourcemap: false,
    clean: true,
    target: 'node22',
    platform: 'node',
    splitting: true,
    treeshake: true,
    external,
  },
  {
    // The library, CJS: one file (esbuild runs what sits behind a dynamic import() lazily, and
    // requires its packages only then), with its own declarations (.d.cts). `shims` gives
    // lazy-require.ts its `import.meta.url`.
    entry: { index: 'src/index.ts', express: 'src/server/express.ts', fastify: 'src/server/fastify.ts', http: 'src/server/http.ts', grpc: 'src/grpc/index.ts' },
    format: ['cjs'],
    shims: true,
    dts: true,
    sourcemap: false,
    clean: false,
    target: 'node22',
    platform: 'node',
    splitting: false,
    // esbuild's own tree shaking: tsup's extra pass (rollup) would hoist those lazy require()s
    // to the top of the file.
    treeshake: false,
    external,
  },
]);
