import { credentials, status } from '@grpc/grpc-js';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshServerInterceptor } from '../../src/grpc/index.js';
import { callEcho, EchoClient, GrpcPods } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

// Istio's "Authorization with JWT" task on a grpc-js server: RequestAuthentication reads the token
// from the call's `authorization` metadata, and an AuthorizationPolicy asks for a request principal.
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

function token(key: SigningKey): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: ISSUER })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid })
    .setIssuer(ISSUER)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(key.privateKey);
}

describe('RequestAuthentication on a grpc-js server (meshServerInterceptor)', () => {
  let trusted: SigningKey;
  let other: SigningKey;
  let mesh: Mesh;
  let pods: GrpcPods;
  let client: EchoClient;

  beforeAll(async () => {
    trusted = await signingKey('trusted');
    other = await signingKey('other');
    mesh = await meshFromYaml(
      `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: echo } }
  jwtRules:
  - issuer: "${ISSUER}"
    jwks: '${JSON.stringify({ keys: [trusted.jwk] })}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: require-jwt, namespace: shop }
spec:
  selector: { matchLabels: { app: echo } }
  action: ALLOW
  rules:
  - from: [{ source: { requestPrincipals: ["${ISSUER}/${ISSUER}"] } }]
`,
      { namespace: 'shop', labels: { app: 'echo' }, dns: false },
    );
    pods = await GrpcPods.start(['127.0.0.12'], [meshServerInterceptor(mesh)]);
    client = new EchoClient(`127.0.0.12:${pods.port}`, credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await pods.close();
    await mesh.close();
  });

  it('lets a call with a valid token through, to the service', async () => {
    const ok = await callEcho(client, 'who', { authorization: `Bearer ${await token(trusted)}` });
    expect(ok.ok).toBe(true);
  });

  it('answers a token the JWKS cannot verify with UNAUTHENTICATED, before the service', async () => {
    const before = pods.received.length;
    const bad = await callEcho(client, 'who', { authorization: `Bearer ${await token(other)}` });
    expect(!bad.ok && bad.code).toBe(status.UNAUTHENTICATED);
    expect(pods.received.length).toBe(before);
  });

  it('answers a call without a token with PERMISSION_DENIED (no request principal), before the service', async () => {
    const before = pods.received.length;
    const none = await callEcho(client, 'who');
    expect(!none.ok && none.code).toBe(status.PERMISSION_DENIED);
    expect(!none.ok && none.details).toBe('RBAC: access denied');
    expect(pods.received.length).toBe(before);
  });
});
