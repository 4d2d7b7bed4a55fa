import express from 'express';
import Fastify from 'fastify';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Mesh } from '../../src/index.js';
import { meshMiddleware } from '../../src/server/express.js';
import { meshPlugin, meshRewriteUrl } from '../../src/server/fastify.js';
import { meshRequest, withMesh } from '../../src/server/http.js';

export type Integration = 'express' | 'fastify' | 'http';
export const INTEGRATIONS: readonly Integration[] = ['express', 'fastify', 'http'];

/** What the test application answers: which handler ran, on which path, knowing whom. */
export interface AppReply {
  readonly handler: string;
  readonly url: string;
  readonly peer?: string;
  readonly principal?: string;
  readonly headers: Record<string, string | string[] | undefined>;
}

export interface TestApp {
  readonly port: number;
  readonly url: string;
  /** Requests each handler served (a bypass shows up here). */
  readonly hits: Map<string, number>;
  close(): Promise<void>;
}

function answer(name: string, req: IncomingMessage, res: ServerResponse, hits: Map<string, number>): void {
  hits.set(name, (hits.get(name) ?? 0) + 1);
  const view = meshRequest(req);
  const reply: AppReply = { handler: name, url: req.url ?? '', peer: view?.peer?.principal, principal: view?.jwt?.principal, headers: req.headers };
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(reply));
}

/**
 * The same small application on each integration, served by `mesh.createServer` (so mTLS
 * callers have identities) on `host`: `routes` are exact paths with their own handler name,
 * anything else answers as `catch-all`. Express runs with case-sensitive, strict routing when
 * `strict` (its defaults are neither).
 */
export async function startApp(
  mesh: Mesh,
  integration: Integration,
  options: { readonly routes?: readonly string[]; readonly strict?: boolean; readonly host?: string; readonly port?: number } = {},
): Promise<TestApp> {
  const hits = new Map<string, number>();
  const routes = options.routes ?? [];
  let server: Server;
  let closeApp: () => Promise<void> = async () => undefined;
  if (integration === 'express') {
    const app = express();
    if (options.strict) {
      app.set('case sensitive routing', true);
      app.set('strict routing', true);
    }
    app.use(meshMiddleware(mesh));
    for (const route of routes) app.all(route, (req, res) => answer(route, req, res, hits));
    app.use((req, res) => answer('catch-all', req, res, hits));
    server = mesh.createServer(app);
  } else if (integration === 'fastify') {
    let made: Server | undefined;
    const app = Fastify({
      rewriteUrl: meshRewriteUrl(mesh),
      serverFactory: (handler) => (made = mesh.createServer(handler)),
    });
    await app.register(meshPlugin, { mesh });
    for (const route of routes)
      app.all(route, (request, reply) => {
        answer(route, request.raw, reply.raw, hits);
        reply.hijack();
      });
    app.setNotFoundHandler((request, reply) => {
      answer('catch-all', request.raw, reply.raw, hits);
      reply.hijack();
    });
    await app.ready();
    server = made!;
    closeApp = () => app.close();
  } else {
    server = mesh.createServer(
      withMesh(mesh, (req, res) => {
        const path = (req.url ?? '/').split('?')[0]!;
        answer(routes.includes(path) ? path : 'catch-all', req, res, hits);
      }),
    );
  }
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://${host}:${port}`,
    hits,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await closeApp();
    },
  };
}

export interface CallResult {
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly reply?: AppReply;
}

export interface CallOptions {
  readonly method?: string;
  readonly headers?: Record<string, string>;
  /** mTLS with this client certificate (and `ca` to verify the server). */
  readonly identity?: { readonly chainPem: string; readonly keyPem: string };
  readonly ca?: string;
  readonly host?: string;
  /** The client's own address (a loopback "pod"): the server sees it as the peer address. */
  readonly localAddress?: string;
}

/** One request on a fresh connection; the path is sent exactly as given (no client-side normalisation). */
export async function call(port: number, path: string, options: CallOptions = {}): Promise<CallResult> {
  const { request: httpRequest } = await import('node:http');
  const { request: httpsRequest } = await import('node:https');
  return new Promise((resolve, reject) => {
    const common = {
      host: options.host ?? '127.0.0.1',
      port,
      path,
      method: options.method ?? 'GET',
      headers: options.headers ?? {},
      agent: false as const,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
    };
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        let reply: AppReply | undefined;
        try {
          reply = res.headers['content-type'] === 'application/json' ? (JSON.parse(body) as AppReply) : undefined;
        } catch {
          reply = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, headers: res.headers, ...(reply ? { reply } : {}) });
      });
    };
    const req = options.identity
      ? httpsRequest({ ...common, cert: options.identity.chainPem, key: options.identity.keyPem, ca: options.ca }, onResponse)
      : httpRequest(common, onResponse);
    req.on('error', reject);
    req.end();
  });
}

/** A port free on 127.0.0.1 right now (for configuration that names the server's port). */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
