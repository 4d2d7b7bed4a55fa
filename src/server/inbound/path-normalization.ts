/**
 * Istio's `meshConfig.pathNormalization.normalization`: how a request path is normalised before
 * authorization policies match it and before the application sees it (Envoy's `normalize_path`,
 * `merge_slashes` and `path_with_escaped_slashes_action`, as istiod sets them).
 */
export type PathNormalization = 'NONE' | 'BASE' | 'MERGE_SLASHES' | 'DECODE_AND_MERGE_SLASHES';

/** Istio's default (`DEFAULT` means `BASE`). */
export const DEFAULT_PATH_NORMALIZATION: PathNormalization = 'BASE';

/** The normalised path (without query), or why the request is refused (Envoy answers 400). */
export type NormalizedPath = { readonly ok: true; readonly path: string } | { readonly ok: false; readonly reason: string };

const HEX = '0123456789ABCDEF';
/** A path without any of these is already canonical (the common case: no work per request). */
// eslint-disable-next-line no-control-regex
const NEEDS_WORK = /[%\\.\u0000-\u0020\u007f-\uffff"<>`{}]/;

/** RFC 3986 unreserved characters: their percent-encodings are decoded by normalisation. */
function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** Characters a canonical path carries escaped (Chromium's path canonicalisation, which Envoy uses). */
function mustEscape(c: number): boolean {
  return c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x60 || c === 0x7b || c === 0x7d;
}

/**
 * Envoy's `PathUtil::canonicalPath`: backslashes become slashes, percent-encoded unreserved
 * characters are decoded (once: `%252e` stays `%2E`), other escapes are upper-cased, characters a
 * path may not carry are escaped, and `.` / `..` segments (encoded or not) are resolved. A `%00`
 * makes the path invalid.
 */
function canonicalPath(path: string): string | undefined {
  if (!NEEDS_WORK.test(path)) return path;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hi = i + 2 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexValue(path.charCodeAt(i + 2)) : -1;
      if (lo < 0) {
        out += '%';
        continue;
      }
      const decoded = hi * 16 + lo;
      if (decoded === 0) return undefined;
      out += isUnreserved(decoded) ? String.fromCharCode(decoded) : `%${HEX[hi]}${HEX[lo]}`;
      i += 2;
    } else if (c === 0x5c /* \ */) {
      out += '/';
    } else if (c === 0) {
      return undefined;
    } else if (mustEscape(c)) {
      for (const byte of Buffer.from(path[i]!, 'utf8')) out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
    } else {
      out += path[i];
    }
  }
  return removeDotSegments(out);
}

/** RFC 3986 section 5.2.4, on a path that starts with `/`; `..` above the root stays at the root. */
function removeDotSegments(path: string): string {
  if (!path.includes('.')) return path;
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '.') {
      if (last) out.push('');
    } else if (s === '..') {
      out.pop();
      if (last) out.push('');
    } else {
      out.push(s);
    }
  }
  return `/${out.join('/')}`;
}

/** `%2F`, `%2f`, `%5C`, `%5c` decoded (Envoy's UNESCAPE_AND_FORWARD, done before canonicalisation). */
function unescapeSlashes(path: string): string {
  return path.replace(/%(2f|5c)/gi, (m) => (m[1] === '2' ? '/' : '\\'));
}

/**
 * Normalises the path of a request target (`/a/../b?x=1`): the fragment is dropped (Envoy strips
 * it), then the path part is normalised per `mode`; the query (without `?`) is returned apart, untouched.
 */
export function normalizeRequestPath(target: string, mode: PathNormalization): NormalizedPath & { readonly query?: string } {
  let end = target.length;
  const hash = target.indexOf('#');
  if (hash >= 0) end = hash;
  const q = target.indexOf('?');
  const pathEnd = q >= 0 && q < end ? q : end;
  let path = target.slice(0, pathEnd);
  const query = pathEnd < end ? target.slice(pathEnd + 1, end) : '';
  if (!path.startsWith('/')) {
    // `*` (OPTIONS) and absolute forms are not origin-form paths; Envoy refuses them at the sidecar.
    if (path === '*') return { ok: true, path, query };
    try {
      const url = new URL(path);
      path = url.pathname;
    } catch {
      return { ok: false, reason: `the request target "${target.slice(0, 100)}" is not a path` };
    }
  }
  if (mode === 'NONE') return { ok: true, path, query };
  if (mode === 'DECODE_AND_MERGE_SLASHES') path = unescapeSlashes(path);
  const canonical = canonicalPath(path);
  if (canonical === undefined) return { ok: false, reason: 'the path contains an encoded NUL (%00)' };
  path = canonical;
  if (mode !== 'BASE') path = path.replace(/\/{2,}/g, '/');
  return { ok: true, path, query };
}

/**
 * Whether a router that percent-decodes paths (Fastify's) would see unreserved characters here
 * that the path as written does not show (`/%61dmin` routes as `/admin`). Only possible with
 * `NONE`: every other mode decodes them first.
 */
export function hidesUnreserved(path: string): boolean {
  return /%(?:[46][1-9a-f]|[57][0-9a]|3[0-9]|2[de]|5f|7e)/i.test(path);
}
