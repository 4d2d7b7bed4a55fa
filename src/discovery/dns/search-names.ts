import { isIP } from 'node:net';

/**
 * The fully qualified names to query for `name`, in the order glibc's `res_nsearch` tries them:
 *
 * - a trailing dot makes the name absolute: only the name itself;
 * - a name with at least `ndots` dots is tried as written first, then with each search domain;
 * - otherwise each search domain first, then the name as written (glibc tries a bare name last
 *   unless `no-tld-query` is set, which we do not support).
 *
 * Results are lowercase, without a trailing dot, and free of duplicates. An IP literal or an empty
 * name has no candidates.
 */
export function searchNames(name: string, search: readonly string[], ndots: number): string[] {
  if (name === '' || name === '.' || isIP(stripBrackets(name)) !== 0) return [];
  const absolute = name.endsWith('.');
  const bare = name.replace(/\.+$/, '').toLowerCase();
  if (absolute) return [bare];
  const dots = countDots(bare);
  const out: string[] = [];
  const add = (candidate: string): void => {
    if (!out.includes(candidate)) out.push(candidate);
  };
  if (dots >= ndots) add(bare);
  for (const domain of search) {
    const d = domain.replace(/^\.+|\.+$/g, '').toLowerCase();
    if (d !== '') add(`${bare}.${d}`);
  }
  add(bare);
  return out;
}

function countDots(name: string): number {
  let n = 0;
  for (let i = 0; i < name.length; i++) if (name.charCodeAt(i) === 46) n++;
  return n;
}

function stripBrackets(name: string): string {
  return name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
}
