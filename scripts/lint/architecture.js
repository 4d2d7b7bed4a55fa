// Which top-level part of src/ may import which: the arrows of docs/architecture.md, checked by
// the `arrows/allowed-imports` lint rule (scripts/lint/import-arrows.js). A part is a folder of
// src/ or a file directly in it (named without extension). Imports inside one part are free.
// Adding an arrow here is a design change: say why in docs/architecture.md.

/** Files directly in src/ that every part may import; they import none of the folders. */
const LEAVES = ['errors', 'clock', 'duration', 'issue', 'shared-state', 'lazy-require', 'node-http', 'request-protocol'];

export const ALLOWED_IMPORTS = {
  // Imports nothing at all: every error class of every part builds on it.
  errors: [],
  clock: [],
  duration: [],
  issue: [],
  'shared-state': [],
  'lazy-require': [],
  'node-http': [],
  'request-protocol': [],
  discovery: [...LEAVES],
  balancer: [...LEAVES, 'discovery'],
  // Matching, route tables and actions. `resilience` for the compiled retry policy a route carries
  // (and resilience's rate limits match requests with routing's matchers: the one two-way pair left
  // between the layers of the request path, to be cut when matching moves below both).
  routing: [...LEAVES, 'resilience'],
  resilience: [...LEAVES, 'balancer', 'discovery', 'routing'],
  telemetry: [...LEAVES, 'balancer', 'resilience'],
  // security and server use each other's types (the inbound layers' request and reporter types;
  // the secure servers' certificate and peer types), and security's compile steps use config's
  // compile context: the two-way pairs left outside the outbound path.
  security: [...LEAVES, 'config', 'discovery', 'kubernetes', 'server', 'telemetry'],
  // undici's pools, connectors, TLS agents and body replay: what the outbound path sends on.
  transport: [...LEAVES, 'discovery', 'security'],
  config: [...LEAVES, 'balancer', 'discovery', 'resilience', 'routing', 'security'],
  kubernetes: [...LEAVES, 'config', 'discovery'],
  cluster: [...LEAVES, 'balancer', 'config', 'discovery', 'kubernetes', 'resilience', 'security', 'telemetry', 'transport'],
  // The outbound request path: its layers, one file each, composed per route and cluster
  // (src/outbound/stack.ts reads as the list). Below it only transport speaks undici.
  outbound: [...LEAVES, 'balancer', 'cluster', 'config', 'resilience', 'routing', 'security', 'telemetry', 'transport'],
  // The undici Dispatcher entry: hands each request to the outbound stack.
  http: [...LEAVES, 'balancer', 'cluster', 'config', 'outbound', 'resilience', 'routing', 'security', 'telemetry', 'transport'],
  server: [...LEAVES, 'config', 'resilience', 'routing', 'security', 'telemetry'],
  // grpc records its calls' spans and metrics through telemetry, as http does.
  grpc: [...LEAVES, 'balancer', 'cluster', 'config', 'resilience', 'routing', 'security', 'server', 'telemetry'],
  inspect: [...LEAVES, 'balancer', 'cluster', 'config', 'discovery', 'kubernetes', 'resilience', 'routing', 'security', 'server'],
  cli: [...LEAVES, 'cluster', 'config', 'discovery', 'inspect', 'security'],
  // The mesh itself and the package's root entry compose everything.
  mesh: '*',
  'create-mesh': ['mesh'],
  index: '*',
};

/**
 * The package's entry points (package.json `exports`, the CLI): no part imports them, so that what
 * an entry loads is what it lists, and a subpath never drags in another.
 */
export const ENTRY_POINTS = [
  'src/index.ts',
  'src/inspect/public.ts',
  'src/server/express.ts',
  'src/server/fastify.ts',
  'src/server/http.ts',
  'src/grpc/index.ts',
  'src/cli/bin.ts',
];

/**
 * Packages only some parts may import. undici is the transport: the layers of the request path
 * speak src/request-protocol.ts, so that a gRPC transport can carry them too. Besides transport,
 * the dispatcher entry (http), the mesh's fetch, the Kubernetes API client and the JWKS fetch of
 * the inbound side use undici as a client of their own.
 */
export const PACKAGE_USERS = {
  undici: ['transport', 'http', 'mesh', 'kubernetes', 'server'],
};
