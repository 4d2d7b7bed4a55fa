import type { IncomingHttpHeaders } from 'node:http';

/** undici accepts headers as an object, a flat [name, value, ...] array, or an iterable of pairs. */
export type RawHeaders =
  | IncomingHttpHeaders
  | Readonly<Record<string, string | string[] | undefined>>
  | readonly (string | Buffer)[]
  | Iterable<readonly [string, string | string[] | undefined]>
  | null
  | undefined;

/**
 * The request's headers, read lazily: most requests are routed without looking at a header, so
 * the lower-cased view is only built when a route match or a header rule asks for it.
 */
export class RequestHeaders {
  private map: Map<string, string> | undefined;

  constructor(readonly raw: RawHeaders) {}

  get(name: string): string | undefined {
    this.map ??= normalise(this.raw);
    return this.map.get(name);
  }

  /** All headers, lower-cased names, several values joined by `, `. */
  entries(): Map<string, string> {
    this.map ??= normalise(this.raw);
    return this.map;
  }
}

function add(map: Map<string, string>, name: string, value: unknown): void {
  if (value === undefined || value === null) return;
  const key = name.toLowerCase();
  const text = Array.isArray(value) ? value.join(', ') : String(value);
  const prior = map.get(key);
  map.set(key, prior === undefined ? text : `${prior}, ${text}`);
}

function normalise(raw: RawHeaders): Map<string, string> {
  const map = new Map<string, string>();
  if (!raw) return map;
  if (Array.isArray(raw)) {
    if (raw.length > 0 && Array.isArray(raw[0])) {
      for (const pair of raw as unknown as [string, string][]) add(map, pair[0], pair[1]);
    } else {
      for (let i = 0; i + 1 < raw.length; i += 2) add(map, String(raw[i]), String(raw[i + 1]));
    }
    return map;
  }
  if (typeof (raw as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [name, value] of raw as Iterable<readonly [string, unknown]>) add(map, name, value);
    return map;
  }
  for (const name of Object.keys(raw)) add(map, name, (raw as Record<string, unknown>)[name]);
  return map;
}
