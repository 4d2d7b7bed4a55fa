import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { createMesh } from '../../src/index.js';
import type { PathNormalization } from '../../src/index.js';
import { normalizeRequestPath } from '../../src/server/inbound/path-normalization.js';
import type { Integration, TestApp } from '../helpers/inbound-apps.js';
import { INTEGRATIONS, startApp } from '../helpers/inbound-apps.js';
import { docs } from '../helpers/mesh-from-yaml.js';

/** Sends raw bytes (no client-side normalisation) and returns the status line's code (0: closed without one). */
function raw(port: number, requestLine: string, headers: readonly string[] = []): Promise<number> {
  return new Promise((resolve) => {
    const all = headers.some((h) => /^host:/i.test(h)) ? headers : ['Host: details.default', ...headers];
    const socket = connect({ host: '127.0.0.1', port }, () =>
      socket.write(`${requestLine}\r\n${all.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`),
    );
    let received = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (received += d));
    const done = (): void => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0));
    socket.on('end', done);
    socket.on('error', done);
  });
}

// Istio's recommended DENY form (security best practices: "/admin" and "/admin/*").
const DENY_ADMIN = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-admin, namespace: default }
spec:
  action: DENY
  rules:
  - to: [{ operation: { paths: ["/admin", "/admin/*"] } }]
  - to: [{ operation: { hosts: ["admin.example.com"] } }]
  - to: [{ operation: { methods: ["GET"] } }]
    when: [{ key: "request.headers[x-token]", notValues: ["admin"] }]
`;
// ALLOW-with-positive-matching, the form Istio recommends over DENY for paths.
const ALLOW_PUBLIC = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-public, namespace: default }
spec:
  action: ALLOW
  rules:
  - to: [{ operation: { paths: ["/public", "/public/*"] } }]
`;

/**
 * Attempts from Istio's and Envoy's advisories and Istio's normalization reference. `base`: the
 * status under the default normalization (BASE); every attempt under every mode must miss the
 * admin handlers.
 */
const ATTEMPTS: readonly { readonly name: string; readonly line: string; readonly headers?: readonly string[]; readonly base: number }[] = [
  { name: 'the path itself', line: 'GET /admin HTTP/1.1', base: 403 },
  { name: 'dot-dot traversal (CVE-2019-9901)', line: 'GET /public/../admin HTTP/1.1', base: 403 },
  { name: 'encoded dot-dot %2e%2e', line: 'GET /public/%2e%2e/admin HTTP/1.1', base: 403 },
  { name: 'encoded dot-dot %2E%2E', line: 'GET /public/%2E%2E/admin/users HTTP/1.1', base: 403 },
  { name: 'single dot /./', line: 'GET /./admin HTTP/1.1', base: 403 },
  { name: 'encoded unreserved %61dmin', line: 'GET /%61dmin HTTP/1.1', base: 403 },
  { name: 'backslash (Envoy normalises \\ to /)', line: 'GET /admin\\users HTTP/1.1', base: 403 },
  { name: 'escaped slash %2F (CVE-2021-31920)', line: 'GET /admin%2Fusers HTTP/1.1', base: 200 },
  { name: 'escaped slash %2f lower-case', line: 'GET /admin%2fusers HTTP/1.1', base: 200 },
  { name: 'escaped backslash %5C', line: 'GET /admin%5Cusers HTTP/1.1', base: 200 },
  { name: 'double slash //admin', line: 'GET //admin HTTP/1.1', base: 200 },
  { name: 'double slash inside /admin//users', line: 'GET /admin//users HTTP/1.1', base: 403 },
  { name: 'fragment (CVE-2021-39156)', line: 'GET /admin#public HTTP/1.1', base: 403 },
  { name: 'query string', line: 'GET /admin?public=1 HTTP/1.1', base: 403 },
  { name: 'trailing slash', line: 'GET /admin/ HTTP/1.1', base: 403 },
  { name: 'upper case (paths are case-sensitive; so is routing here)', line: 'GET /ADMIN HTTP/1.1', base: 200 },
  { name: ';params (Tomcat-style path parameters)', line: 'GET /admin;jsessionid=1 HTTP/1.1', base: 200 },
  { name: 'encoded NUL %00 (CVE-2019-9900)', line: 'GET /admin%00 HTTP/1.1', base: 400 },
  { name: 'absolute-form request target', line: 'GET http://details.default/admin HTTP/1.1', base: 403 },
  { name: 'lower-case method (rejected by the HTTP parser)', line: 'get /admin HTTP/1.1', base: 400 },
  { name: 'host in upper case (CVE-2021-39155)', line: 'GET /public HTTP/1.1', headers: ['Host: ADMIN.Example.COM', 'x-token: admin'], base: 403 },
  { name: 'duplicate header to satisfy notValues', line: 'GET /public HTTP/1.1', headers: ['x-token: guest', 'x-token: admin'], base: 403 },
];

/** The application's real admin handlers; an attempt routed to one of them is a bypass. */
const ADMIN_ROUTES = ['/admin', '/admin/', '/admin/users'];
const MODES: readonly PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

let mesh: Mesh | undefined;
let app: TestApp | undefined;
afterEach(async () => {
  await app?.close();
  await mesh?.close();
  app = undefined;
  mesh = undefined;
});

async function serve(integration: Integration, yaml: string, mode: PathNormalization): Promise<TestApp> {
  mesh = await createMesh({
    namespace: 'default',
    labels: { app: 'details' },
    certificates: false,
    dns: false,
    watch: false,
    meshConfig: { pathNormalization: { normalization: mode } },
    config: docs(yaml),
  });
  app = await startApp(mesh, integration, { routes: ['/public', ...ADMIN_ROUTES], strict: true });
  return app;
}

function adminHits(a: TestApp): number {
  return ADMIN_ROUTES.reduce((sum, r) => sum + (a.hits.get(r) ?? 0), 0);
}

describe.each(INTEGRATIONS)('the bypass table through %s', (integration) => {
  it.each(MODES)('no attempt reaches an admin handler under a DENY policy (%s)', async (mode) => {
    const a = await serve(integration, DENY_ADMIN, mode);
    const statuses: Record<string, number> = {};
    // x-token: admin keeps the GET rule out of the way, except where a row sends its own headers.
    for (const attempt of ATTEMPTS) statuses[attempt.name] = await raw(a.port, attempt.line, attempt.headers ?? ['x-token: admin']);
    expect(adminHits(a)).toBe(0);
    if (mode === 'BASE') expect(statuses).toEqual(Object.fromEntries(ATTEMPTS.map((t) => [t.name, t.base])));
    if (mode === 'DECODE_AND_MERGE_SLASHES') {
      expect(statuses['escaped slash %2F (CVE-2021-31920)']).toBe(403);
      expect(statuses['escaped backslash %5C']).toBe(403);
      expect(statuses['double slash //admin']).toBe(403);
    }
  });

  it('no attempt gets past ALLOW-with-positive-matching', async () => {
    const a = await serve(integration, ALLOW_PUBLIC, 'BASE');
    for (const attempt of ATTEMPTS) {
      const status = await raw(a.port, attempt.line.replace('/public', '/elsewhere'), attempt.headers);
      expect([400, 403], attempt.name).toContain(status);
    }
    expect(await raw(a.port, 'GET /public/../public/x HTTP/1.1')).toBe(200);
    expect(adminHits(a)).toBe(0);
  });
});

describe('path normalization as Envoy does it', () => {
  it.each([
    ['BASE', '/a/../b', '/b'],
    ['BASE', '/a/./b/', '/a/b/'],
    ['BASE', '/../../x', '/x'],
    ['BASE', '/some%2fdata/%61%62%63', '/some%2Fdata/abc'],
    ['BASE', '/%7e%5f%2D', '/~_-'],
    ['BASE', '/a%252e', '/a%252e'],
    ['BASE', '/a\\b', '/a/b'],
    ['BASE', '//a//b', '//a//b'],
    ['MERGE_SLASHES', '//a//b', '/a/b'],
    ['DECODE_AND_MERGE_SLASHES', '/some%2fdata%5Cx', '/some/data/x'],
    ['DECODE_AND_MERGE_SLASHES', '/a/..%2f..%2fb', '/b'],
    ['NONE', '/a/../b', '/a/../b'],
  ] as const)('%s: %s is %s', (mode, input, output) => {
    expect(normalizeRequestPath(input, mode)).toMatchObject({ ok: true, path: output });
  });
});
