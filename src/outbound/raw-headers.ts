import type { IncomingHttpHeaders } from 'node:http';

/**
 * Headers as undici's raw `[name, value, name, value...]` list. undici's fetch reads a response's
 * headers from `controller.rawHeaders`, not from the headers object, so a response the mesh
 * makes or changes must carry a raw list that says the same thing.
 */
export function toRawHeaders(headers: IncomingHttpHeaders | Readonly<Record<string, string | string[] | undefined>>): Buffer[] {
  const raw: Buffer[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    const key = Buffer.from(name, 'latin1');
    if (Array.isArray(value)) for (const v of value) raw.push(key, Buffer.from(v, 'latin1'));
    else raw.push(key, Buffer.from(String(value), 'latin1'));
  }
  return raw;
}
