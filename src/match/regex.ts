import type * as Re2js from 're2js';
import type { RE2JS } from 're2js';
import { lazyRequire } from '../lazy-require.js';

/** RE2 (re2js), loaded with the first pattern compiled. */
export const loadRe2 = lazyRequire<typeof Re2js>('re2js');

/** A compiled Istio regex: RE2 syntax, matched against the whole input. */
export interface IstioRegex {
  readonly pattern: string;
  /**
   * `native` when a JavaScript RegExp gives exactly RE2's answer for this pattern (and cannot
   * backtrack badly); `re2` otherwise.
   */
  readonly engine: 'native' | 're2';
  test(input: string): boolean;
}

/** RE2's reason for rejecting `pattern` (e.g. "invalid or unsupported Perl syntax: `(?=`"), or undefined. */
export function re2SyntaxError(pattern: string): string | undefined {
  const entry = compiled(pattern);
  return 're2' in entry ? undefined : entry.error;
}

/**
 * Compiles an Istio regex (StringMatch.regex, uriRegexRewrite.match, ...). Istio hands these to
 * Envoy's RE2 with full-string match, so `v1` matches `v1` but not `v12`. Throws a SyntaxError
 * with RE2's reason when RE2 rejects the pattern.
 */
export function compileIstioRegex(pattern: string): IstioRegex {
  const entry = compiled(pattern);
  if (!('re2' in entry)) {
    throw new SyntaxError(`invalid RE2 regex ${JSON.stringify(pattern)}: ${entry.error}`, { cause: entry.cause });
  }
  const { re2, native } = entry;
  if (native) return { pattern, engine: 'native', test: (input) => native.test(input) };
  return { pattern, engine: 're2', test: (input) => re2.testExact(input) };
}

type Compiled = { readonly re2: RE2JS; readonly native: RegExp | undefined } | { readonly error: string; readonly cause: unknown };

/**
 * Patterns seen lately, compiled. Validation and every snapshot build meet the same patterns
 * again and again, and an RE2 compile costs tens of microseconds. Neither RE2JS nor a RegExp
 * without the g/y flags keeps state between calls, so sharing them is safe.
 */
const cache = new Map<string, Compiled>();
const CACHE_SIZE = 2048;

function compiled(pattern: string): Compiled {
  let entry = cache.get(pattern);
  if (!entry) {
    try {
      entry = { re2: loadRe2().RE2JS.compile(pattern), native: nativeEquivalent(pattern) };
    } catch (error) {
      entry = { error: errorReason(error), cause: error };
    }
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
    cache.set(pattern, entry);
  }
  return entry;
}

function errorReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^error parsing regexp: /, '');
}

/** Escapes meaning the same in RE2 and in a JavaScript `u` RegExp, outside a character class. */
const SAME_ESCAPES = new Set('dDwWbBtnrfv\\^$.|?*+()[]{}/');
/** The same, inside a character class. */
const SAME_CLASS_ESCAPES = new Set('dDwWtnrfv\\^$.|?*+()[]{}/-');
/** RE2's `\s` is ASCII whitespace without `\v`; JavaScript's also has `\v` and Unicode spaces. */
const RE2_SPACE = '\\t\\n\\f\\r ';

/**
 * Backtracking budget for the native path: the product of the choices bounded quantifiers and
 * alternations offer. With at most one unbounded quantifier and no quantified group that contains
 * a quantifier or an alternation, a full match costs O(input length x this product).
 */
const MAX_CHOICES = 1024;

/**
 * Returns an anchored `u` RegExp that answers exactly as RE2's full match does, or undefined when
 * the pattern uses anything whose meaning differs (flag groups such as `(?i)`, named groups,
 * `\p{..}`, `[[:digit:]]`, `\z`, `\A`, `\Q..\E`, `\x{..}`, `[]a]`, ...) or whose backtracking cost
 * a JavaScript engine cannot bound (nested or repeated unbounded quantifiers). Being conservative
 * only costs speed: everything else runs on re2js.
 */
function nativeEquivalent(pattern: string): RegExp | undefined {
  let out = '';
  let unbounded = 0;
  let choices = 1;
  // One frame per open group; the bottom frame is the whole pattern.
  const groups: { quantified: boolean; alternatives: number }[] = [{ quantified: false, alternatives: 1 }];
  // What a quantifier would apply to: nothing, a single-character atom, or a group.
  let atom: 'none' | 'char' | { quantified: boolean; alternatives: number } = 'none';
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i] as string;
    const top = groups[groups.length - 1] as { quantified: boolean; alternatives: number };
    if (c === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) return undefined;
      if (next === 's') out += `[${RE2_SPACE}]`;
      else if (next === 'S') out += `[^${RE2_SPACE}]`;
      else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(pattern.slice(i + 2, i + 4))) {
        out += pattern.slice(i, i + 4);
        i += 2;
      } else if (SAME_ESCAPES.has(next)) out += `\\${next}`;
      else return undefined;
      i += 2;
      atom = next === 'b' || next === 'B' ? 'none' : 'char';
      continue;
    }
    if (c === '[') {
      const end = classEnd(pattern, i);
      if (end === undefined) return undefined;
      const body = translateClass(pattern.slice(i + 1, end));
      if (body === undefined) return undefined;
      out += `[${body}]`;
      i = end + 1;
      atom = 'char';
      continue;
    }
    if (c === '(') {
      if (pattern[i + 1] === '?') {
        if (pattern[i + 2] !== ':') return undefined;
        out += '(?:';
        i += 3;
      } else {
        out += '(';
        i += 1;
      }
      groups.push({ quantified: false, alternatives: 1 });
      atom = 'none';
      continue;
    }
    if (c === ')') {
      if (groups.length === 1) return undefined;
      const group = groups.pop() as { quantified: boolean; alternatives: number };
      const parent = groups[groups.length - 1] as { quantified: boolean; alternatives: number };
      parent.quantified ||= group.quantified;
      choices *= group.alternatives;
      out += ')';
      i += 1;
      atom = group;
      continue;
    }
    if (c === '|') {
      top.alternatives += 1;
      out += '|';
      i += 1;
      atom = 'none';
      continue;
    }
    const quantifier = readQuantifier(pattern, i);
    if (quantifier) {
      if (atom === 'none') return undefined;
      if (typeof atom === 'object' && (atom.quantified || atom.alternatives > 1)) return undefined;
      if (quantifier.max === undefined) unbounded += 1;
      else choices *= quantifier.max - quantifier.min + 1;
      if (unbounded > 1 || choices > MAX_CHOICES) return undefined;
      top.quantified = true;
      out += quantifier.text;
      i += quantifier.text.length;
      atom = 'none';
      continue;
    }
    // RE2's `.` is any character but `\n`; JavaScript's also excludes `\r`, U+2028 and U+2029.
    out += c === '.' ? '[^\\n]' : c;
    i += 1;
    atom = c === '^' || c === '$' ? 'none' : 'char';
  }
  if (groups.length !== 1) return undefined;
  choices *= (groups[0] as { alternatives: number }).alternatives;
  if (choices > MAX_CHOICES) return undefined;
  try {
    return new RegExp(`^(?:${out})$`, 'u');
  } catch {
    return undefined;
  }
}

/** Index of the `]` closing the class opened at `start`, or undefined for forms that differ. */
function classEnd(pattern: string, start: number): number | undefined {
  let i = start + 1;
  if (pattern[i] === '^') i++;
  // RE2 reads `[]a]` as a class holding `]`; JavaScript reads `[]` as an empty class.
  if (pattern[i] === ']') return undefined;
  while (i < pattern.length) {
    const c = pattern[i];
    if (c === '\\') i += 2;
    else if (c === ']') return i;
    else i += 1;
  }
  return undefined;
}

function translateClass(body: string): string | undefined {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === '[' && body[i + 1] === ':') return undefined;
    if (c === '\\') {
      const next = body[i + 1] as string;
      if (next === 's') out += RE2_SPACE;
      else if (next === 'x' && /^[0-9a-fA-F]{2}$/.test(body.slice(i + 2, i + 4))) {
        out += body.slice(i, i + 4);
        i += 2;
      } else if (SAME_CLASS_ESCAPES.has(next)) out += `\\${next}`;
      else return undefined;
      i += 1;
      continue;
    }
    out += c;
  }
  return out;
}

function readQuantifier(pattern: string, i: number): { text: string; min: number; max: number | undefined } | undefined {
  const c = pattern[i];
  let text: string;
  let min: number;
  let max: number | undefined;
  if (c === '*' || c === '+' || c === '?') {
    text = c;
    min = c === '+' ? 1 : 0;
    max = c === '?' ? 1 : undefined;
  } else if (c === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
    if (!m) return undefined;
    text = m[0];
    min = Number(m[1]);
    max = m[2] === undefined ? min : m[3] === '' ? undefined : Number(m[3]);
  } else {
    return undefined;
  }
  // A lazy quantifier finds a full match exactly when the greedy one does.
  if (pattern[i + text.length] === '?') text += '?';
  return { text, min, max };
}
