import { credentials, makeGenericClientConstructor, status } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { callEcho, ECHO_SERVICE, fail, GrpcPods } from '../helpers/grpc-pods.js';
import type { EchoClient } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

const insecure = credentials.createInsecure();

/** A client of `test.Echo`'s methods under another service name: only a path rewrite makes a pod serve it. */
function clientOf(service: string) {
  const definition = {
    who: { ...ECHO_SERVICE.who, path: `/${service}/Who` },
    other: { ...ECHO_SERVICE.other, path: `/${service}/Other` },
  };
  return makeGenericClientConstructor(definition, service) as unknown as new (address: string, creds: typeof insecure, options?: ChannelOptions) => EchoClient;
}

describe('VirtualService rewrite.uri on gRPC calls (the pod sees the rewritten method)', () => {
  let echo: GrpcPods;
  let mesh: Mesh;
  const clients: EchoClient[] = [];
  const client = (service: string): EchoClient => {
    const Client = clientOf(service);
    const c = new Client(`mesh:///reviews.shop:${echo.port}`, insecure, meshGrpcOptions(mesh));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    echo = await GrpcPods.start(['127.0.0.2', '127.0.0.3']);
    mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${echo.port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.2 }, { address: 127.0.0.3 }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: reviews, namespace: shop }
spec:
  host: reviews.shop.svc.cluster.local
  trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - name: legacy-prefix
    match: [{ uri: { prefix: /legacy.Echo/ } }]
    rewrite: { uri: /test.Echo/ }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
  - name: old-exact
    match: [{ uri: { exact: /old.Api/Who } }]
    rewrite: { uri: /test.Echo/Other }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
  - name: versioned-regex
    match: [{ uri: { prefix: /v1. } }]
    rewrite: { uriRegexRewrite: { match: '^/v1\\.(\\w+)/', rewrite: '/test.\\1/' } }
    retries: { attempts: 2, retryOn: unavailable }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
  - name: unsendable
    match: [{ uri: { prefix: /bad.Echo/ } }]
    rewrite: { uri: '/with space/' }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
`,
      { namespace: 'shop', dns: false },
    );
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await mesh?.close();
    await echo?.close();
  });

  it('replaces the matched prefix: /legacy.Echo/Who reaches the pod as /test.Echo/Who', async () => {
    const legacy = client('legacy.Echo');
    const who = await callEcho(legacy, 'who');
    expect(who.ok && who.reply.method).toBe('/test.Echo/Who');
    const other = await callEcho(legacy, 'other');
    expect(other.ok && other.reply.method).toBe('/test.Echo/Other');
  });

  it('replaces the whole path when the match is not a prefix', async () => {
    const old = client('old.Api');
    const outcome = await callEcho(old, 'who');
    expect(outcome.ok && outcome.reply.method).toBe('/test.Echo/Other');
  });

  it('applies uriRegexRewrite, and a retry goes to the rewritten path too', async () => {
    const versioned = client('v1.Echo');
    let calls = 0;
    echo.behave = (_call, callback) => (++calls === 1 ? fail(callback, status.UNAVAILABLE, 'first attempt fails') : false);
    try {
      const outcome = await callEcho(versioned, 'who');
      expect(outcome.ok && outcome.reply.method).toBe('/test.Echo/Who');
      expect(calls).toBe(2);
      expect(echo.received.slice(-2).map((r) => r.method)).toEqual(['/test.Echo/Who', '/test.Echo/Who']);
    } finally {
      echo.behave = undefined;
    }
  });

  it('without a route the pod answers the unrewritten method UNIMPLEMENTED (the rewrite is what makes it work)', async () => {
    const direct = new (clientOf('legacy.Echo'))(`127.0.0.2:${echo.port}`, insecure);
    clients.push(direct);
    const outcome = await callEcho(direct, 'who');
    expect(!outcome.ok && outcome.code).toBe(status.UNIMPLEMENTED);
  });

  it('refuses a rewrite to a path a gRPC call cannot send, with a coded error, sending nothing', async () => {
    const bad = client('bad.Echo');
    const before = echo.received.length;
    const outcome = await callEcho(bad, 'who');
    expect(!outcome.ok && outcome.code).toBe(status.UNAVAILABLE);
    expect(!outcome.ok && outcome.metadata.get('x-sidecarless-error-code')).toEqual(['ERR_MESH_GRPC_UNSUPPORTED_ROUTE']);
    expect(!outcome.ok && outcome.details).toContain('"/with space/Who"');
    expect(echo.received.length).toBe(before);
  });
});
