import { defineConfig } from 'tsup';

// Loaded on demand (SHARED rate limits; discovery: 'kubernetes'), or the framework an integration
// serves; the user installs them (devDependencies here).
const external = ['ioredis', '@kubernetes/client-node', 'fastify', 'express', '@grpc/grpc-js'];

// The package's entries (package.json `exports`): the library, the types of what inspection
// returns (`sidecarless/inspect`), the server integrations and gRPC.
const entries = {
  index: 'src/index.ts',
  inspect: 'src/inspect/public.ts',
  express: 'src/server/express.ts',
  fastify: 'src/server/fastify.ts',
  http: 'src/server/http.ts',
  grpc: 'src/grpc/index.ts',
};

export default defineConfig([
  {
    // The library and the CLI, ESM: split, so that code behind a dynamic import() (the
    // configuration pipeline, Kubernetes, telemetry, the YAML parser, the admin server) is a chunk
    // of its own, loaded only when used, and the CLI shares the library's chunks instead of carrying
    // a copy (its #! line is in src/cli/bin.ts). The server integrations are subpaths of their own
    // that load nothing of the framework they serve. No source maps: the code is not minified, and
    // maps would double the package.
    entry: { ...entries, cli: 'src/cli/bin.ts' },
    format: ['esm'],
    // stripInternal: members marked @internal (the Mesh's factory, test hooks) are not published.
    dts: { entry: entries, compilerOptions: { stripInternal: true } },
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
    entry: entries,
    format: ['cjs'],
    dts: { only: true, compilerOptions: { stripInternal: true } },
    clean: false,
    target: 'node22',
    platform: 'node',
    external,
  },
]);
