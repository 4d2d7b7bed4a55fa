import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh, MeshOptions } from '../../src/index.js';
import { createMesh, JwtAuthenticationError } from '../../src/index.js';
import type { Integration, TestApp } from '../helpers/inbound-apps.js';
import { call, INTEGRATIONS, startApp } from '../helpers/inbound-apps.js';
import { docs } from '../helpers/mesh-from-yaml.js';

const ISSUER = 'testing@secure.istio.io';

interface SigningKey {
  readonly kid: string;
  readonly privateKey: Parameters<SignJWT['sign']>[0];
  readonly jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

function token(key: SigningKey, claims: Record<string, unknown> = {}, options: { exp?: number; nbf?: number; issuer?: string } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: ISSUER, groups: ['group1', 'group2'], scope: 'read write', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuer(options.issuer ?? ISSUER)
    .setIssuedAt(now)
    .setExpirationTime(options.exp ?? now + 3600)
    .setNotBefore(options.nbf ?? now - 10)
    .sign(key.privateKey);
}

/** A real identity provider's JWKS endpoint, whose keys the test changes (rotation) or breaks. */
class JwksServer {
  keys: JWK[] = [];
  failing = false;
  fetches = 0;
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.fetches++;
      if (this.failing) {
        res.statusCode = 503;
        res.end('down');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.4', resolve));
    this.url = `http://127.0.0.4:${(this.server.address() as AddressInfo).port}/jwks.json`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

// Istio's "Authorization with JWT" / "JWT authentication" tasks, httpbin in namespace foo.
const jwtExample = (jwksUri: string, extra = '') => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt-example, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  jwtRules:
  - issuer: "${ISSUER}"
    jwksUri: "${jwksUri}"
${extra}`;
const REQUIRE_JWT = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
  - from: [{ source: { requestPrincipals: ["${ISSUER}/${ISSUER}"] } }]
`;
const REQUIRE_GROUP = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: ALLOW
  rules:
  - from: [{ source: { requestPrincipals: ["${ISSUER}/${ISSUER}"] } }]
    when:
    - key: "request.auth.claims[groups]"
      values: ["group1"]
`;
// "Require valid tokens per-path": only /headers needs a token.
const PER_PATH = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt-headers, namespace: foo }
spec:
  selector: { matchLabels: { app: httpbin } }
  action: DENY
  rules:
  - from: [{ source: { notRequestPrincipals: ["*"] } }]
    to: [{ operation: { paths: ["/headers"] } }]
`;

const jwks = new JwksServer();
let key1: SigningKey;
let key2: SigningKey;
let mesh: Mesh | undefined;
let app: TestApp | undefined;

beforeAll(async () => {
  key1 = await signingKey('key-1');
  key2 = await signingKey('key-2');
  await jwks.start();
});
afterAll(async () => {
  await jwks.stop();
});
afterEach(async () => {
  await app?.close();
  await mesh?.close();
  app = undefined;
  mesh = undefined;
  jwks.failing = false;
  jwks.keys = [key1.jwk];
});

async function serve(integration: Integration, yaml: string, options: Omit<MeshOptions, 'config'> = {}): Promise<TestApp> {
  mesh = await createMesh({ namespace: 'foo', labels: { app: 'httpbin' }, certificates: false, dns: false, watch: false, ...options, config: docs(yaml) });
  app = await startApp(mesh, integration);
  return app;
}

const bearer = (t: string) => ({ headers: { authorization: `Bearer ${t}` } });

describe.each(INTEGRATIONS)('RequestAuthentication through %s', (integration) => {
  it("Istio's JWT task: a valid token passes, an invalid one is 401, none passes; require-jwt then demands one", async () => {
    jwks.keys = [key1.jwk];
    const { port } = await serve(integration, jwtExample(jwks.url));
    const good = await call(port, '/headers', bearer(await token(key1)));
    expect(good.status).toBe(200);
    expect(good.reply?.principal).toBe(`${ISSUER}/${ISSUER}`);
    // forwardOriginalToken is false: the application does not see the token.
    expect(good.reply?.headers.authorization).toBeUndefined();
    const bad = await call(port, '/headers', bearer('deadbeef'));
    expect([bad.status, bad.body]).toEqual([401, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections']);
    expect(bad.headers['www-authenticate']).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/headers", error="invalid_token"$/);
    expect((await call(port, '/headers')).status).toBe(200);
    await app!.close();
    await mesh!.close();
    const strict = await serve(integration, `${jwtExample(jwks.url)}---\n${REQUIRE_JWT}`);
    expect((await call(strict.port, '/headers')).status).toBe(403);
    expect((await call(strict.port, '/headers', bearer(await token(key1)))).status).toBe(200);
  });
});

describe('RequestAuthentication', () => {
  it.each([
    ['expired', async () => token(key1, {}, { exp: Math.floor(Date.now() / 1000) - 120 }), 'Jwt is expired'],
    ['not yet valid', async () => token(key1, {}, { nbf: Math.floor(Date.now() / 1000) + 3600 }), 'Jwt not yet valid'],
    ['from an issuer not configured', async () => token(key1, {}, { issuer: 'someone-else' }), 'Jwt issuer is not configured'],
    ['signed by a key the JWKS does not have', async () => token(await signingKey('key-1'), {}), 'Jwt verification fails'],
    ['naming a key id the JWKS does not have', async () => token(await signingKey('stranger'), {}), "Jwks doesn't have key to match kid or alg from Jwt"],
  ])("a token %s is 401 with Envoy's words, and an inboundDenied event", async (_name, make, reason) => {
    jwks.keys = [key1.jwk];
    const { port, hits } = await serve('http', jwtExample(jwks.url));
    const denied: JwtAuthenticationError[] = [];
    mesh!.on('inboundDenied', (e) => denied.push(e as JwtAuthenticationError));
    const r = await call(port, '/headers', bearer(await make()));
    expect([r.status, r.body]).toEqual([401, reason]);
    expect(denied[0]).toBeInstanceOf(JwtAuthenticationError);
    expect(denied[0]).toMatchObject({ code: 'ERR_MESH_JWT_INVALID', reason });
    expect(hits.size).toBe(0);
  });

  it('audiences: a token for another audience is 401', async () => {
    jwks.keys = [key1.jwk];
    const { port } = await serve('http', jwtExample(jwks.url, '    audiences: ["httpbin"]\n'));
    expect((await call(port, '/', bearer(await token(key1, { aud: 'httpbin' })))).status).toBe(200);
    const r = await call(port, '/', bearer(await token(key1, { aud: 'other' })));
    expect([r.status, r.body]).toEqual([401, 'Audiences in Jwt are not allowed']);
  });

  it("claims: Istio's groups condition, scope as a space-delimited list, request.auth.audiences and presenter", async () => {
    jwks.keys = [key1.jwk];
    const { port } = await serve(
      'http',
      `${jwtExample(jwks.url)}---\n${REQUIRE_GROUP}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: scopes, namespace: foo }
spec:
  action: DENY
  rules:
  - when:
    - { key: "request.auth.claims[scope]", values: ["admin"] }
  - when:
    - { key: "request.auth.presenter", values: ["evil-client"] }
  - when:
    - { key: "request.auth.claims[nested][level]", values: ["deep"] }
`,
    );
    expect((await call(port, '/', bearer(await token(key1)))).status).toBe(200);
    expect((await call(port, '/', bearer(await token(key1, { groups: ['group2'] })))).status).toBe(403);
    expect((await call(port, '/', bearer(await token(key1, { scope: 'read admin' })))).status).toBe(403);
    expect((await call(port, '/', bearer(await token(key1, { azp: 'evil-client' })))).status).toBe(403);
    expect((await call(port, '/', bearer(await token(key1, { nested: { level: 'deep' } })))).status).toBe(403);
  });

  it('per path: only /headers requires a token (Istio\'s notRequestPrincipals: ["*"])', async () => {
    jwks.keys = [key1.jwk];
    const { port } = await serve('http', `${jwtExample(jwks.url)}---\n${PER_PATH}`);
    expect((await call(port, '/ip')).status).toBe(200);
    expect((await call(port, '/headers')).status).toBe(403);
    expect((await call(port, '/headers', bearer(await token(key1)))).status).toBe(200);
  });

  it('fromHeaders, fromParams, fromCookies, forwardOriginalToken, outputPayloadToHeader, outputClaimToHeaders', async () => {
    jwks.keys = [key1.jwk];
    const { port } = await serve(
      'http',
      jwtExample(
        jwks.url,
        `    fromHeaders: [{ name: x-jwt-assertion, prefix: "Token " }]
    fromParams: [my_token]
    fromCookies: [session]
    forwardOriginalToken: true
    outputPayloadToHeader: x-jwt-payload
    outputClaimToHeaders: [{ header: x-jwt-sub, claim: sub }, { header: x-jwt-tenant, claim: tenant }]
`,
      ),
    );
    const t = await token(key1, { tenant: 'acme' });
    const viaHeader = await call(port, '/', { headers: { 'x-jwt-assertion': `Token ${t}` } });
    expect(viaHeader.reply?.principal).toBe(`${ISSUER}/${ISSUER}`);
    expect(viaHeader.reply?.headers).toMatchObject({
      'x-jwt-assertion': `Token ${t}`,
      'x-jwt-sub': ISSUER,
      'x-jwt-tenant': 'acme',
      'x-jwt-payload': t.split('.')[1],
    });
    expect((await call(port, `/?my_token=${t}`)).reply?.principal).toBe(`${ISSUER}/${ISSUER}`);
    expect((await call(port, '/', { headers: { cookie: `a=b; session=${t}` } })).reply?.principal).toBe(`${ISSUER}/${ISSUER}`);
    // The default Authorization header is not a location of this rule: no identity.
    expect((await call(port, '/', bearer(t))).reply?.principal).toBeUndefined();
    // A caller cannot forge the output headers.
    const forged = await call(port, '/', { headers: { 'x-jwt-sub': 'admin' } });
    expect(forged.reply?.headers['x-jwt-sub']).toBeUndefined();
  });

  it('inline jwks', async () => {
    const { port } = await serve(
      'http',
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: inline, namespace: foo }
spec:
  jwtRules:
  - issuer: "${ISSUER}"
    jwks: '${JSON.stringify({ keys: [key2.jwk] })}'
`,
    );
    expect((await call(port, '/', bearer(await token(key2)))).status).toBe(200);
    expect((await call(port, '/', bearer(await token(key1)))).status).toBe(401);
  });

  it('signing keys rotate: a token with a new key id makes the mesh fetch the JWKS again', async () => {
    jwks.keys = [key1.jwk];
    const { port } = await serve('http', jwtExample(jwks.url));
    expect((await call(port, '/', bearer(await token(key1)))).status).toBe(200);
    const before = jwks.fetches;
    jwks.keys = [key1.jwk, key2.jwk];
    expect((await call(port, '/', bearer(await token(key2)))).status).toBe(200);
    expect(jwks.fetches).toBe(before + 1);
    // The old key retired: tokens it signed stop working once the set is fetched again.
    jwks.keys = [key2.jwk];
    expect((await call(port, '/', bearer(await token(key1)))).status).toBe(200);
  });

  it('keys are served stale when the JWKS endpoint fails; with none ever fetched the token is 401', async () => {
    jwks.keys = [key1.jwk];
    const { port } = await serve('http', jwtExample(jwks.url));
    expect((await call(port, '/', bearer(await token(key1)))).status).toBe(200);
    jwks.failing = true;
    // An unknown key id asks again; the fetch fails and the keys held keep serving.
    expect((await call(port, '/', bearer(await token(key2)))).status).toBe(401);
    expect((await call(port, '/', bearer(await token(key1)))).status).toBe(200);
    await app!.close();
    await mesh!.close();
    const cold = await serve('http', jwtExample(jwks.url.replace('jwks.json', 'other.json')));
    const r = await call(cold.port, '/', bearer(await token(key1)));
    expect([r.status, r.body]).toEqual([401, 'Jwks remote fetch is failed']);
  });
});
