import { credentials, Metadata, status } from '@grpc/grpc-js';
import type { ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshGrpcOptions } from '../../src/grpc/index.js';
import { EchoClient, fail, GrpcPods } from '../helpers/grpc-pods.js';
import type { EchoReply } from '../helpers/grpc-pods.js';
import { meshFromYaml } from '../helpers/mesh-from-yaml.js';

/** A call's reply (or error), and the response metadata (headers) the caller got. */
interface Seen {
  readonly reply: EchoReply | undefined;
  readonly error: ServiceError | undefined;
  readonly headers: Metadata | undefined;
}

function call(client: EchoClient, method: 'who' | 'other', metadata: Record<string, string | string[]>): Promise<Seen> {
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) for (const one of [v].flat()) md.add(k, one);
  return new Promise((resolve) => {
    let headers: Metadata | undefined;
    const c = client[method]({}, md, {}, (error, reply) => resolve({ reply, error: error ?? undefined, headers })) as ClientUnaryCall;
    c.on('metadata', (m: Metadata) => {
      headers = m;
    });
  });
}

describe('VirtualService headers on gRPC metadata', () => {
  let pods: GrpcPods;
  let mesh: Mesh;
  let client: EchoClient;

  beforeAll(async () => {
    pods = await GrpcPods.start(['127.0.0.2', '127.0.0.3']);
    // Every answer carries response headers of the pod's own; `Other` fails at the pod, trailers only.
    pods.behave = (c, callback, pod) => {
      if (c.getPath() === '/test.Echo/Other') return fail(callback, status.NOT_FOUND, 'no such thing');
      const md = new Metadata();
      md.set('x-pod-secret', 'hidden');
      md.set('x-pod', pod);
      c.sendMetadata(md);
      const seen: Record<string, string> = {};
      for (const [k, v] of Object.entries(c.metadata.getMap())) seen[k] = String(v);
      seen[':authority'] = c.getHost();
      callback(null, { pod, method: c.getPath(), metadata: seen, deadlineMs: null, body: null, peer: null, peerSerial: null });
      return true;
    };
    mesh = await meshFromYaml(
      `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: ${pods.port}, name: grpc, protocol: GRPC }]
  endpoints: [{ address: 127.0.0.2 }, { address: 127.0.0.3 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http:
  - match: [{ headers: { x-host: { exact: "rewrite" } } }]
    rewrite: { authority: reviews-canary.shop }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
  - match: [{ headers: { x-host: { exact: "header" } } }]
    route:
    - destination: { host: reviews.shop.svc.cluster.local }
      headers: { request: { set: { host: reviews-beta.shop } } }
  - match: [{ headers: { x-bad: { exact: "yes" } } }]
    headers: { request: { set: { x-name: "café" } } }
    route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
  - match: [{ headers: { x-strip: { exact: "me" } } }]
    headers:
      request:
        set: { x-route: route-set, x-strip: replaced }
        add: { x-added: route-add }
        remove: [x-user-secret]
      response:
        set: { x-served-by: mesh }
        add: { x-pod: mesh-added }
        remove: [x-pod-secret]
    route:
    - destination: { host: reviews.shop.svc.cluster.local }
      headers:
        request: { set: { x-route: destination-set } }
        response: { add: { x-destination: d1 } }
  - route: [{ destination: { host: reviews.shop.svc.cluster.local } }]
`,
      { namespace: 'shop' },
    );
    client = new EchoClient(`mesh:///reviews.shop:${pods.port}`, credentials.createInsecure(), meshGrpcOptions(mesh));
  });
  afterAll(async () => {
    client.close();
    await pods.close();
    await mesh.close();
  });

  it('request set/add/remove reach the pod, matched on the metadata as sent; the destination set wins', async () => {
    const seen = await call(client, 'who', { 'x-strip': 'me', 'x-user-secret': 'token', 'x-added': 'caller' });
    expect(seen.error).toBeUndefined();
    const got = seen.reply!.metadata;
    // One destination: its rules are appended to the route's (istiod), so its `set` is written last.
    expect(got['x-route']).toBe('destination-set');
    expect(got['x-strip']).toBe('replaced');
    expect(got['x-user-secret']).toBeUndefined();
    // `add` appends to the caller's value (grpc-js joins repeated keys with ", ").
    expect(got['x-added']).toBe('caller, route-add');
  });

  it('response set/add/remove on the response metadata the caller gets', async () => {
    const seen = await call(client, 'who', { 'x-strip': 'me' });
    expect(seen.headers).toBeDefined();
    expect(seen.headers!.get('x-served-by')).toEqual(['mesh']);
    expect(seen.headers!.get('x-pod-secret')).toEqual([]);
    expect(seen.headers!.get('x-pod')).toEqual([seen.reply!.pod, 'mesh-added']);
    expect(seen.headers!.get('x-destination')).toEqual(['d1']);
  });

  it('a trailers-only error response gets the response rules on its metadata', async () => {
    const seen = await call(client, 'other', { 'x-strip': 'me' });
    expect(seen.error?.code).toBe(status.NOT_FOUND);
    expect(seen.error!.metadata.get('x-served-by')).toEqual(['mesh']);
    expect(seen.error!.metadata.get('x-destination')).toEqual(['d1']);
  });

  it('a route without rules leaves the metadata as the caller sent it', async () => {
    const seen = await call(client, 'who', { 'x-user-secret': 'token' });
    expect(seen.reply!.metadata['x-user-secret']).toBe('token');
    expect(seen.reply!.metadata['x-route']).toBeUndefined();
    expect(seen.headers!.get('x-pod-secret')).toEqual(['hidden']);
    expect(seen.headers!.get('x-served-by')).toEqual([]);
  });

  it('metadata grpc-js cannot send (a non-ASCII value) fails the call closed with a coded error, nothing sent', async () => {
    const before = pods.received.length;
    const seen = await call(client, 'who', { 'x-bad': 'yes' });
    expect(seen.error?.code).toBe(status.UNAVAILABLE);
    expect(seen.error?.details).toMatch(/^ERR_MESH_GRPC_UNSUPPORTED_ROUTE: .*x-name/);
    expect(pods.received.length).toBe(before);
  });

  it('rewrite.authority and a host rule set the :authority the pod sees; otherwise the target as written', async () => {
    expect((await call(client, 'who', { 'x-host': 'rewrite' })).reply!.metadata[':authority']).toBe('reviews-canary.shop');
    expect((await call(client, 'who', { 'x-host': 'header' })).reply!.metadata[':authority']).toBe('reviews-beta.shop');
    expect((await call(client, 'who', {})).reply!.metadata[':authority']).toBe(`reviews.shop:${pods.port}`);
  });
});
