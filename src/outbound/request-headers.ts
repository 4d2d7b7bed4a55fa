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
  /** 1: `raw` is a plain object whose names are all lower case, read in place; -1: not; 0: unknown. */
  private lowerCaseObject = 0;

  constructor(readonly raw: RawHeaders) {}

  /** `name` in lower case. */
  get(name: string): string | undefined {
    if (this.map === undefined) {
      // The usual caller writes lower-case names in a plain object: a route match can read it
      // in place instead of copying every header into a map.
      if (this.lowerCaseObject === 0) this.lowerCaseObject = isLowerCaseObject(this.raw) ? 1 : -1;
      if (this.lowerCaseObject === 1) {
        const raw = this.raw as Readonly<Record<string, unknown>> | null | undefined;
        return raw && Object.hasOwn(raw, name) ? text(raw[name]) : undefined;
      }
      this.map = normalise(this.raw);
    }
    return this.map.get(name);
  }

  /** All headers, lower-cased names, several values joined by `, `. */
  entries(): Map<string, string> {
    this.map ??= normalise(this.raw);
    return this.map;
  }
}

/** A header value as one string (several joined by `, `); undefined when unset. */
function text(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  return Array.isArray(value) ? value.join(', ') : String(value);
}

function add(map: Map<string, string>, name: string, value: unknown): void {
  const t = text(value);
  if (t === undefined) return;
  const key = name.toLowerCase();
  const prior = map.get(key);
  map.set(key, prior === undefined ? t : `${prior}, ${t}`);
}

function isLowerCaseObject(raw: RawHeaders): boolean {
  if (raw === undefined || raw === null) return true;
  if (typeof raw !== 'object' || Array.isArray(raw) || Symbol.iterator in raw) return false;
  for (const name of Object.keys(raw)) if (name !== name.toLowerCase()) return false;
  return true;
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
