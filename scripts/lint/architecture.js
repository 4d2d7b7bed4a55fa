// Which top-level part of src/ may import which: the arrows of docs/architecture.md, checked by
// the `arrows/allowed-imports` lint rule (scripts/lint/import-arrows.js). A part is a folder of
// src/ or a file directly in it (named without extension). Imports inside one part are free.
// Adding an arrow here is a design change: say why in docs/architecture.md. A table in which two
// parts may import each other is refused outright (import-arrows.js).

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
  // The request view every layer reads (`RouteRequest`, the query string) and Istio's matchers
  // (string, regex with RE2, HTTPMatchRequest): below routing and resilience, which both read it.
  match: [...LEAVES],
  // Route tables and actions. `resilience` for the compiled retry policy a route carries: a route
  // is configuration of the policies it names, so the arrow points from routing to resilience.
  routing: [...LEAVES, 'match', 'resilience'],
  // Rate limits key their buckets on the request view (`match`), never on routing.
  resilience: [...LEAVES, 'balancer', 'discovery', 'match'],
  telemetry: [...LEAVES, 'balancer', 'resilience'],
  // Neither config nor server: config compiles security's resources (config/compile/security/)
  // into types declared here, and the contract of the inbound layers the servers run is here
  // (security/inbound/). `kubernetes` for the Secrets certificates are read from (which closes a
  // loop of three through config: docs/architecture.md says what cutting it takes).
  security: [...LEAVES, 'discovery', 'kubernetes', 'match', 'telemetry'],
  // undici's pools, connectors, TLS agents and body replay: what the outbound path sends on.
  transport: [...LEAVES, 'discovery', 'security'],
  config: [...LEAVES, 'balancer', 'discovery', 'match', 'resilience', 'routing', 'security'],
  kubernetes: [...LEAVES, 'config', 'discovery'],
  cluster: [...LEAVES, 'balancer', 'config', 'discovery', 'kubernetes', 'resilience', 'security', 'telemetry', 'transport'],
  // The outbound request path: its layers, one file each, composed per route
  // (src/outbound/stack.ts reads as the list). Below it only transport speaks undici.
  outbound: [...LEAVES, 'balancer', 'cluster', 'config', 'match', 'resilience', 'routing', 'security', 'telemetry', 'transport'],
  // The undici Dispatcher entry: hands each request to the outbound stack.
  http: [...LEAVES, 'outbound'],
  server: [...LEAVES, 'config', 'resilience', 'security', 'telemetry'],
  // A gRPC call passes HTTP's route and cluster layers (the mesh composes them with gRPC's call layer
  // at the bottom, so sidecarless/grpc loads no undici); its attempts run on the outbound attempt
  // engine (src/outbound/attempts/, which imports neither undici nor grpc-js); its spans and metrics
  // go through telemetry, as http's do.
  grpc: [...LEAVES, 'balancer', 'cluster', 'config', 'match', 'outbound', 'resilience', 'routing', 'security', 'server', 'telemetry'],
  inspect: [...LEAVES, 'balancer', 'cluster', 'config', 'discovery', 'kubernetes', 'match', 'resilience', 'routing', 'security', 'server'],
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
