import type { Dispatcher } from 'undici';
import { fetch as undiciFetch, getGlobalDispatcher, request as undiciRequest, setGlobalDispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Mesh } from '../../src/index.js';
import { meshFromYaml, reviewsServiceEntry } from '../helpers/mesh-from-yaml.js';
import type { PodReply } from '../helpers/pods.js';
import { Pods } from '../helpers/pods.js';

let pods: Pods;
let mesh: Mesh;
let port: number;

const config = (p: number) => `
${reviewsServiceEntry(p, ['127.0.0.2'])}---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: reviews, namespace: shop }
spec:
  hosts: [reviews]
  http:
  - name: moved
    match: [{ uri: { exact: /old } }]
    redirect: { uri: /new, redirectCode: 302 }
  - name: big
    match: [{ uri: { prefix: /big } }]
    route: [{ destination: { host: reviews } }]
  - name: default
    headers:
      request: { set: { x-routed: mesh } }
      response: { add: { x-mesh: sidecarless } }
    route: [{ destination: { host: reviews } }]
`;

const BIG = 4 * 1024 * 1024;

beforeAll(async () => {
  pods = await Pods.start(['127.0.0.2']);
  port = pods.port;
  pods.behave = (req, res) => {
    if (!req.url?.startsWith('/big')) return false;
    // A body larger than any stream buffer: the caller must pull it through pauses and resumes.
    req.resume();
    res.setHeader('content-type', 'application/octet-stream');
    res.end(Buffer.alloc(BIG, 7));
    return true;
  };
  mesh = await meshFromYaml(config(port), { namespace: 'shop' });
});
afterAll(async () => {
  await mesh.close();
  await pods.close();
});

/**
 * Node's built-in fetch (its own bundled undici 7) with an undici 8 `dispatcher`: the types come
 * from two undici versions, so the option is passed through a cast.
 */
type NodeFetchInit = Omit<RequestInit, 'dispatcher'> & { dispatcher?: Dispatcher };
const nodeFetch = (url: string, init?: NodeFetchInit): Promise<Response> => globalThis.fetch(url, init as RequestInit);

const LEGACY_GLOBAL = Symbol.for('undici.globalDispatcher.1');
const GLOBAL = Symbol.for('undici.globalDispatcher.2');
type GlobalSlots = Record<symbol, unknown>;

describe('Node global fetch and undici entry points through the mesh', () => {
  it("routes Node's global fetch after setGlobalDispatcher(mesh.dispatcher), response rules included", async () => {
    const slots = globalThis as unknown as GlobalSlots;
    const previous = getGlobalDispatcher();
    const previousLegacy = slots[LEGACY_GLOBAL];
    setGlobalDispatcher(mesh.dispatcher);
    try {
      const res = await fetch(`http://reviews:${port}/global`);
      const body = (await res.json()) as PodReply;
      expect(body.pod).toBe('127.0.0.2');
      expect(body.headers['x-routed']).toBe('mesh');
      expect(res.headers.get('x-mesh')).toBe('sidecarless');
      // A redirect the mesh answers itself keeps its Location.
      const moved = await fetch(`http://reviews:${port}/old`, { redirect: 'manual' });
      expect(moved.status).toBe(302);
      expect(moved.headers.get('location')).toBe(`http://reviews:${port}/new`);
    } finally {
      setGlobalDispatcher(previous);
      slots[LEGACY_GLOBAL] = previousLegacy;
    }
    expect(slots[GLOBAL]).toBe(previous);
  });

  it("accepts the legacy handler of Node's fetch given the dispatcher directly, bodies both ways", async () => {
    const res = await nodeFetch(`http://reviews.shop:${port}/direct`, {
      method: 'POST',
      body: JSON.stringify({ hello: 'world' }),
      headers: { 'content-type': 'application/json' },
      dispatcher: mesh.dispatcher,
    });
    const body = (await res.json()) as PodReply;
    expect(res.status).toBe(200);
    expect(body.method).toBe('POST');
    expect(body.headers['x-routed']).toBe('mesh');
    expect(res.headers.get('x-mesh')).toBe('sidecarless');

    const big = await nodeFetch(`http://reviews:${port}/big`, { dispatcher: mesh.dispatcher });
    expect((await big.arrayBuffer()).byteLength).toBe(BIG);

    const moved = await nodeFetch(`http://reviews:${port}/old`, { redirect: 'manual', dispatcher: mesh.dispatcher });
    expect(moved.status).toBe(302);
    expect(moved.headers.get('location')).toBe(`http://reviews:${port}/new`);
  });

  it('serves undici.request and undici.fetch given { dispatcher: mesh.dispatcher }', async () => {
    const res = await undiciRequest(`http://reviews:${port}/request`, { dispatcher: mesh.dispatcher });
    expect(((await res.body.json()) as PodReply).headers['x-routed']).toBe('mesh');
    expect(res.headers['x-mesh']).toBe('sidecarless');

    const fetched = await undiciFetch(`http://reviews:${port}/fetch`, { dispatcher: mesh.dispatcher });
    expect(((await fetched.json()) as PodReply).path).toBe('/fetch');
    // undici's fetch reads response headers from the raw list: the mesh's changes must be in it.
    expect(fetched.headers.get('x-mesh')).toBe('sidecarless');

    const moved = await undiciFetch(`http://reviews:${port}/old`, { dispatcher: mesh.dispatcher, redirect: 'manual' });
    expect(moved.headers.get('location')).toBe(`http://reviews:${port}/new`);
    expect(moved.headers.get('content-length')).toBe('0');
  });
});
