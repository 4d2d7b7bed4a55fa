import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { AccessDeniedError, createMesh, MeshConfigError } from '../../src/index.js';
import type { InboundAuditEvent } from '../../src/index.js';
import { DevCa } from '../../src/security/dev-ca/dev-ca.js';
import { writeCertificateDirectory } from '../../src/security/dev-ca/write-layout.js';
import type { Integration, TestApp } from '../helpers/inbound-apps.js';
import { call, INTEGRATIONS, startApp } from '../helpers/inbound-apps.js';
import { docs } from '../helpers/mesh-from-yaml.js';
import { OtelHarness } from '../helpers/otel.js';
import { makeTempDir, removeTempDir } from '../helpers/temp-dir.js';

const ca = DevCa.create();
const productpage = ca.issue({ namespace: 'default', serviceAccount: 'bookinfo-productpage' });
const reviews = ca.issue({ namespace: 'default', serviceAccount: 'bookinfo-reviews' });
const sleep = ca.issue({ namespace: 'foo', serviceAccount: 'sleep' });

// Istio's "Authorization for HTTP traffic" task (bookinfo, namespace default).
const ALLOW_NOTHING = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-nothing, namespace: default }
spec: {}
`;
const PRODUCTPAGE_VIEWER = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: productpage-viewer, namespace: default }
spec:
  selector: { matchLabels: { app: productpage } }
  action: ALLOW
  rules:
  - to:
    - operation:
        methods: ["GET"]
`;
const DETAILS_VIEWER = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: details-viewer, namespace: default }
spec:
  selector: { matchLabels: { app: details } }
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/default/sa/bookinfo-productpage"]
    to:
    - operation:
        methods: ["GET"]
`;
// Istio's "Authorization policies with a deny action" task (httpbin, namespace foo).
const DENY_METHOD_GET = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-method-get, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: DENY
  rules:
  - to:
    - operation:
        methods: ["GET"]
    when:
    - key: request.headers[x-token]
      notValues: ["admin"]
`;
const ALLOW_PATH_IP = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-path-ip, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
  - to:
    - operation:
        paths: ["/ip"]
`;

let certDir: string;
let mesh: Mesh | undefined;
let app: TestApp | undefined;

beforeAll(async () => {
  certDir = await makeTempDir();
  await writeCertificateDirectory(certDir, 'istio', ca.issue({ namespace: 'default', serviceAccount: 'bookinfo-details', ips: ['127.0.0.1'] }));
});
afterAll(async () => {
  await removeTempDir(certDir);
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  await mesh?.close();
  mesh = undefined;
});

async function serve(integration: Integration, yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<TestApp> {
  mesh = await createMesh({
    namespace: 'default',
    labels: { app: 'details' },
    certificates: { directory: certDir },
    dns: false,
    watch: false,
    ...options,
    config: docs(yaml),
  });
  app = await startApp(mesh, integration);
  return app;
}

const mtls = (identity: { chainPem: string; keyPem: string }) => ({ identity, ca: ca.certificatePem });

describe.each(INTEGRATIONS)('AuthorizationPolicy through %s', (integration) => {
  it("Istio's HTTP task: allow-nothing denies every request with 403 RBAC: access denied", async () => {
    const { port, hits } = await serve(integration, ALLOW_NOTHING);
    const r = await call(port, '/details/0');
    expect([r.status, r.body]).toEqual([403, 'RBAC: access denied']);
    expect((await call(port, '/details/0', mtls(productpage))).status).toBe(403);
    expect(hits.size).toBe(0);
  });

  it("Istio's HTTP task: details-viewer lets the productpage identity GET, nobody else", async () => {
    const { port, hits } = await serve(integration, `${ALLOW_NOTHING}---\n${PRODUCTPAGE_VIEWER}---\n${DETAILS_VIEWER}`);
    const ok = await call(port, '/details/0', mtls(productpage));
    expect(ok.status).toBe(200);
    expect(ok.reply).toMatchObject({ handler: 'catch-all', peer: 'cluster.local/ns/default/sa/bookinfo-productpage' });
    expect((await call(port, '/details/0', { ...mtls(productpage), method: 'POST' })).status).toBe(403);
    expect((await call(port, '/details/0', mtls(reviews))).status).toBe(403);
    // Plaintext has no principal (PERMISSIVE serves it): not the productpage.
    expect((await call(port, '/details/0')).status).toBe(403);
    expect(hits.get('catch-all')).toBe(1);
  });

  it("Istio's deny task: DENY GET unless x-token admin, then ALLOW only /ip", async () => {
    const { port } = await serve(integration, DENY_METHOD_GET, { namespace: 'foo', labels: { app: httpbinLabel() } });
    expect((await call(port, '/get', { headers: { 'x-token': 'guest' } })).status).toBe(403);
    expect((await call(port, '/get')).status).toBe(403);
    expect((await call(port, '/get', { headers: { 'x-token': 'admin' } })).status).toBe(200);
    expect((await call(port, '/post', { method: 'POST', headers: { 'x-token': 'guest' } })).status).toBe(200);
    await app!.close();
    await mesh!.close();
    const both = await serve(integration, `${DENY_METHOD_GET}---\n${ALLOW_PATH_IP}`, { namespace: 'foo', labels: { app: 'httpbin' } });
    expect((await call(both.port, '/ip', { headers: { 'x-token': 'guest' } })).status).toBe(403);
    expect((await call(both.port, '/ip', { headers: { 'x-token': 'admin' } })).status).toBe(200);
    expect((await call(both.port, '/get', { headers: { 'x-token': 'admin' } })).status).toBe(403);
  });
});

function httpbinLabel(): string {
  return 'httpbin';
}

describe('AuthorizationPolicy fields and conditions', () => {
  const policy = (rules: string, action = 'ALLOW', extra = '') => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: default${extra} }
spec:
  action: ${action}
  rules:
${rules}`;

  it.each([
    ['namespaces', `  - from: [{ source: { namespaces: ["foo"] } }]`, sleep, productpage],
    ['notNamespaces', `  - from: [{ source: { notNamespaces: ["foo"] } }]`, productpage, sleep],
    ['serviceAccounts (policy namespace by default)', `  - from: [{ source: { serviceAccounts: ["bookinfo-productpage"] } }]`, productpage, sleep],
    ['serviceAccounts ns/sa', `  - from: [{ source: { serviceAccounts: ["foo/sleep"] } }]`, sleep, productpage],
    ['principals prefix', `  - from: [{ source: { principals: ["cluster.local/ns/foo/*"] } }]`, sleep, productpage],
    ['principals suffix', `  - from: [{ source: { principals: ["*/sa/bookinfo-reviews"] } }]`, reviews, sleep],
    ['trustDomains', `  - from: [{ source: { trustDomains: ["cluster.local"] } }]`, sleep, undefined],
    ['source.namespace', `  - when: [{ key: source.namespace, values: ["default"] }]`, reviews, sleep],
    ['source.principal', `  - when: [{ key: source.principal, values: ["cluster.local/ns/foo/sa/sleep"] }]`, sleep, reviews],
    ['source.serviceAccount', `  - when: [{ key: source.serviceAccount, values: ["foo/sleep"] }]`, sleep, reviews],
    ['source.trustDomain', `  - when: [{ key: source.trustDomain, values: ["cluster.*"] }]`, sleep, undefined],
  ])('from/when %s', async (name, rules, allowed, denied) => {
    const { port } = await serve('http', policy(rules));
    expect((await call(port, '/', mtls(allowed))).status).toBe(200);
    if (denied) expect((await call(port, '/', mtls(denied))).status).toBe(403);
    // Plaintext has no identity: a positive match fails, a `not` match holds (Istio's documented caveat).
    expect((await call(port, '/')).status).toBe(name.startsWith('not') ? 200 : 403);
  });

  it("principals in the mesh's trust domain also match its aliases (istiod's trust-domain migration)", async () => {
    const { port } = await serve('http', policy('  - from: [{ source: { principals: ["new.td/ns/foo/sa/sleep"] } }]'), {
      trustDomain: 'new.td',
      trustDomainAliases: ['cluster.local'],
    });
    expect((await call(port, '/', mtls(sleep))).status).toBe(200);
    expect((await call(port, '/', mtls(reviews))).status).toBe(403);
  });

  it('ipBlocks, remoteIpBlocks (x-forwarded-for), source.ip and remote.ip', async () => {
    const { port } = await serve(
      'http',
      policy(`  - from: [{ source: { ipBlocks: ["127.0.0.1/32"], notRemoteIpBlocks: ["10.1.0.0/16"] } }]
  - when: [{ key: remote.ip, values: ["192.168.7.7"] }, { key: source.ip, values: ["127.0.0.3"] }]`),
    );
    expect((await call(port, '/')).status).toBe(200);
    expect((await call(port, '/', { headers: { 'x-forwarded-for': '10.1.2.3' } })).status).toBe(403);
    expect((await call(port, '/', { headers: { 'x-forwarded-for': '10.1.2.3, 172.16.0.1' } })).status).toBe(200);
    // From 127.0.0.3 only the second rule can allow: source.ip and remote.ip must both match.
    const from3 = (xff?: string) => call(port, '/', { localAddress: '127.0.0.3', ...(xff ? { headers: { 'x-forwarded-for': xff } } : {}) });
    expect((await from3()).status).toBe(403);
    expect((await from3('10.1.0.1')).status).toBe(403);
    expect((await from3('192.168.7.7')).status).toBe(200);
  });

  it('to: hosts (case-insensitive), ports, methods, paths with prefix, suffix and templates; notPaths', async () => {
    const { port } = await serve(
      'http',
      policy(`  - to:
    - operation:
        hosts: ["details.default*"]
        methods: ["GET", "HEAD"]
        paths: ["/api/*", "*.png", "/v1/{*}/books/{**}", "/exact"]
        notPaths: ["/api/admin*"]`),
    );
    const host = { host: 'Details.Default.svc:9080' };
    const get = (path: string, headers: Record<string, string> = host) => call(port, path, { headers });
    expect((await get('/api/x')).status).toBe(200);
    expect((await get('/a/b/c.png')).status).toBe(200);
    expect((await get('/exact')).status).toBe(200);
    expect((await get('/exact/')).status).toBe(403);
    expect((await get('/v1/shop/books/')).status).toBe(200);
    expect((await get('/v1/shop/books/a/b')).status).toBe(200);
    expect((await get('/v1/a/b/books/x')).status).toBe(403);
    expect((await get('/api/admin/users')).status).toBe(403);
    expect((await get('/api/x', { host: 'ratings.default' })).status).toBe(403);
    expect((await call(port, '/api/x', { method: 'POST', headers: host })).status).toBe(403);
    const ports = await serve(
      'http',
      policy(`  - to: [{ operation: { notPorts: ["${1}"] } }]
  - when: [{ key: destination.port, values: ["1"] }]`),
    );
    expect((await call(ports.port, '/')).status).toBe(200);
  });

  it('AUDIT policies report matching requests; dry-run policies are evaluated and reported, never enforced', async () => {
    const { port } = await serve(
      'http',
      `${policy('  - to: [{ operation: { paths: ["/audited"] } }]', 'AUDIT')}\n---
${policy('  - to: [{ operation: { paths: ["/admin"] } }]', 'DENY', ', annotations: { "istio.io/dry-run": "true" }').replace('name: p,', 'name: deny-dry,')}`,
    );
    const events: InboundAuditEvent[] = [];
    mesh!.on('inboundAudit', (e) => events.push(e));
    expect((await call(port, '/audited')).status).toBe(200);
    expect((await call(port, '/admin')).status).toBe(200);
    expect(events.map((e) => [e.kind, e.policy, e.result, e.path])).toEqual([
      ['audit', 'default/p', 'matched', '/audited'],
      ['dry-run', 'default/deny-dry', 'allowed', '/audited'],
      ['dry-run', 'default/deny-dry', 'denied', '/admin'],
    ]);
  });

  it('a denial is an inboundDenied event and a sidecarless.inbound.denied metric', async () => {
    const otel = new OtelHarness({ tracing: false });
    try {
      const { port } = await serve('http', policy('  - to: [{ operation: { paths: ["/admin*"] } }]', 'DENY').replace('name: p,', 'name: deny-admin,'));
      const denied: AccessDeniedError[] = [];
      mesh!.on('inboundDenied', (e) => denied.push(e as AccessDeniedError));
      expect((await call(port, '/admin/x')).status).toBe(403);
      expect(denied[0]).toBeInstanceOf(AccessDeniedError);
      expect(denied[0]).toMatchObject({ code: 'ERR_MESH_ACCESS_DENIED', policy: 'default/deny-admin', action: 'DENY', path: '/admin/x' });
      const points = await otel.metric('sidecarless.inbound.denied');
      expect(points.map((p) => [p.attributes['sidecarless.inbound.reason'], p.attributes['sidecarless.authz.policy'], p.value])).toEqual([
        ['rbac', 'default/deny-admin', 1],
      ]);
    } finally {
      await otel.shutdown();
    }
  });
});

describe('AuthorizationPolicy scope', () => {
  const deny = (ns: string, extra = '') => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all-${ns}, namespace: ${ns} }
spec:
  action: DENY
${extra}  rules: [{}]
`;
  it.each([
    ['the workload namespace', deny('default'), 403],
    ['the root namespace (mesh-wide)', deny('istio-system'), 403],
    ['another namespace', deny('foo'), 200],
    ['a matching selector', deny('default', '  selector: { matchLabels: { app: details } }\n'), 403],
    ['a selector for other workloads', deny('default', '  selector: { matchLabels: { app: reviews } }\n'), 200],
    ['a root-namespace selector', deny('istio-system', '  selector: { matchLabels: { app: details } }\n'), 403],
    ['targetRefs (gateways and waypoints only)', deny('default', '  targetRefs: [{ kind: Service, group: "", name: details }]\n'), 200],
  ])('a DENY policy in %s', async (_name, yaml, status) => {
    const { port } = await serve('http', yaml);
    expect((await call(port, '/')).status).toBe(status);
  });

  it('a condition key that needs an Envoy proxy is refused at load, naming the resource and field', async () => {
    const bad = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: metadata-match, namespace: default }
spec:
  selector: { matchLabels: { app: not-this-workload } }
  action: DENY
  rules:
  - when: [{ key: "experimental.envoy.filters.network.mysql_proxy[db.table]", values: ["[update]"] }]
`;
    const error = await serve('http', bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MeshConfigError);
    expect((error as MeshConfigError).message).toMatch(
      /AuthorizationPolicy default\/metadata-match: spec\.rules\[0\]\.when\[0\]\.key: experimental\.envoy\.filters\.network\.mysql_proxy\[db\.table\] reads Envoy's dynamic metadata/,
    );
  });
});

describe('CUSTOM action', () => {
  const custom = (provider: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext-authz, namespace: default }
spec:
  action: CUSTOM
  provider: { name: ${provider} }
  rules:
  - to: [{ operation: { paths: ["/headers"] } }]
`;
  let authz: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (authz ? authz.close(() => resolve()) : resolve()));
    authz = undefined;
  });

  it('asks an application authorizer for the requests its policy matches', async () => {
    const asked: string[] = [];
    const { port } = await serve('http', custom('in-process'), {
      inbound: { authorizers: { 'in-process': (r) => (asked.push(r.path), r.header('x-ext-authz') === 'allow') } },
    });
    expect((await call(port, '/headers', { headers: { 'x-ext-authz': 'allow' } })).status).toBe(200);
    expect((await call(port, '/headers', { headers: { 'x-ext-authz': 'deny' } })).status).toBe(403);
    expect((await call(port, '/ip', { headers: { 'x-ext-authz': 'deny' } })).status).toBe(200);
    expect(asked).toEqual(['/headers', '/headers']);
  });

  it("Istio's ext-authz task: an envoyExtAuthzHttp service decides, its denial and headers reach the caller", async () => {
    authz = createServer((req, res) => {
      if (req.headers['x-ext-authz'] === 'allow') {
        res.setHeader('x-ext-authz-check-result', 'allowed');
        res.end();
      } else {
        res.statusCode = 403;
        res.setHeader('x-ext-authz-check-result', 'denied');
        res.end(`denied by ext_authz for not found header \`x-ext-authz: allow\` in the request`);
      }
    });
    await new Promise<void>((resolve) => authz!.listen(0, '127.0.0.2', resolve));
    const authzPort = (authz.address() as AddressInfo).port;
    const se = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ext-authz, namespace: default }
spec:
  hosts: [ext-authz.foo.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 8000, name: http, protocol: HTTP, targetPort: ${authzPort} }]
  endpoints: [{ address: 127.0.0.2 }]
`;
    const { port, hits } = await serve('http', `${custom('sample-ext-authz-http')}---\n${se}`, {
      meshConfig: {
        extensionProviders: [
          {
            name: 'sample-ext-authz-http',
            envoyExtAuthzHttp: {
              service: 'ext-authz.foo.svc.cluster.local',
              port: 8000,
              includeRequestHeadersInCheck: ['x-ext-authz'],
              headersToUpstreamOnAllow: ['x-ext-authz-check-result'],
            },
          },
        ],
      },
    });
    const allowed = await call(port, '/headers', { headers: { 'x-ext-authz': 'allow' } });
    expect(allowed.status).toBe(200);
    expect(allowed.reply?.headers['x-ext-authz-check-result']).toBe('allowed');
    const denied = await call(port, '/headers', { headers: { 'x-ext-authz': 'deny' } });
    expect([denied.status, denied.body, denied.headers['x-ext-authz-check-result']]).toEqual([
      403,
      'denied by ext_authz for not found header `x-ext-authz: allow` in the request',
      'denied',
    ]);
    expect(hits.get('catch-all')).toBe(1);
  });

  it('a provider that is not defined denies what its policy matches (fails closed), with a warning at load', async () => {
    const { port } = await serve('http', custom('nowhere'));
    expect(mesh!.snapshot.warnings.map((w) => w.code)).toContain('unknown-provider');
    expect((await call(port, '/headers')).status).toBe(403);
    expect((await call(port, '/ip')).status).toBe(200);
  });
});
