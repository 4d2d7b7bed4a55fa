import type * as NodeHttp from 'node:http';

/**
 * `node:http`, loaded on first use. A static ESM import of it also evaluates its lazy `WebSocket`,
 * `CloseEvent` and `MessageEvent` exports, which load Node's bundled undici (about 40 ms) that the
 * mesh never uses; `process.getBuiltinModule` returns the module without touching them.
 */
export function nodeHttp(): typeof NodeHttp {
  return process.getBuiltinModule('node:http');
}
