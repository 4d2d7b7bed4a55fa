import { hashKey } from './index.js';
import type { RandomSource } from '../clock.js';
import { parseDuration } from '../duration.js';

/** `consistentHash.httpCookie` as the balancer spec carries it. */
export interface CookieHashSpec {
  readonly name: string;
  readonly ttl: string | undefined;
  readonly path: string | undefined;
  readonly attributes?: readonly { readonly name: string; readonly value?: string }[];
}

interface CompiledCookie {
  /** Whether a missing cookie is issued (Envoy: a `ttl` is set, even to 0). */
  readonly issue: boolean;
  /** What follows `name="value"` in the Set-Cookie header. */
  readonly suffix: string;
}

const compiled = new WeakMap<CookieHashSpec, CompiledCookie>();

/**
 * Envoy's `makeSetCookieValue` tail: `; Max-Age=<ttl seconds>` unless the TTL is 0 (a session
 * cookie), `; Path=...` when set, the extra attributes, then `; HttpOnly`. Compiled once per spec.
 */
function compile(spec: CookieHashSpec): CompiledCookie {
  let c = compiled.get(spec);
  if (!c) {
    const ttlMs = spec.ttl !== undefined ? parseDuration(spec.ttl) : undefined;
    const seconds = ttlMs === undefined ? 0 : Math.floor(ttlMs / 1000);
    let suffix = seconds > 0 ? `; Max-Age=${seconds}` : '';
    if (spec.path) suffix += `; Path=${spec.path}`;
    for (const a of spec.attributes ?? []) suffix += a.value ? `; ${a.name}=${a.value}` : `; ${a.name}`;
    suffix += '; HttpOnly';
    c = { issue: ttlMs !== undefined, suffix };
    compiled.set(spec, c);
  }
  return c;
}

/** A cookie's value from a Cookie header, as Envoy's `parseCookieValue` reads it (quotes removed). */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end < 0) end = header.length;
    let i = start;
    while (i < end && header.charCodeAt(i) === 32) i++;
    const eq = header.indexOf('=', i);
    if (eq > 0 && eq < end && header.slice(i, eq) === name) {
      let v = header.slice(eq + 1, end);
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      return v;
    }
    start = end + 1;
  }
  return undefined;
}

function hex32(random: RandomSource): string {
  return Math.floor(random() * 0x1_0000_0000)
    .toString(16)
    .padStart(8, '0');
}

/** The hash of one request under a cookie policy, and the cookie to issue with its response. */
export interface CookieHash {
  readonly hash: number | undefined;
  /** A `Set-Cookie` value to add to the response, when the mesh made the cookie up. */
  readonly setCookie: string | undefined;
}

const NO_COOKIE: CookieHash = { hash: undefined, setCookie: undefined };

/**
 * Envoy's cookie hash policy: a request with the cookie hashes its value; one without it, when a
 * `ttl` is set, gets a new value (16 hex digits), is routed by it, and the response carries
 * `Set-Cookie: name="value"; Max-Age=...; Path=...; HttpOnly` so the caller's next requests stick
 * to the same endpoint. Envoy derives the value from the downstream connection's addresses (one
 * cookie per connection); in-process there is no connection, so each cookie-less request gets a
 * fresh random value, as a new connection would. Without `ttl`, a missing cookie means no hash
 * (the balancer picks as it would without one).
 */
export function cookieHash(spec: CookieHashSpec, cookieHeader: string | undefined, random: RandomSource): CookieHash {
  const existing = cookieValue(cookieHeader, spec.name);
  if (existing) return { hash: hashKey(existing), setCookie: undefined };
  const c = compile(spec);
  if (!c.issue) return NO_COOKIE;
  const value = hex32(random) + hex32(random);
  return { hash: hashKey(value), setCookie: `${spec.name}="${value}"${c.suffix}` };
}
