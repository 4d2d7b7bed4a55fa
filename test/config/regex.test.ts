import { describe, expect, it } from 'vitest';
import { compileIstioRegex, re2SyntaxError } from '../../src/match/regex.js';

describe('Istio regexes: RE2 syntax, whole-string match', () => {
  it('a partial match does not match', () => {
    const re = compileIstioRegex('v1');
    expect(re.test('v1')).toBe(true);
    expect(re.test('v12')).toBe(false);
    expect(re.test('xv1')).toBe(false);
    const path = compileIstioRegex('/reviews/[0-9]+');
    expect(path.test('/reviews/42')).toBe(true);
    expect(path.test('/reviews/42/extra')).toBe(false);
    expect(compileIstioRegex('a|ab').test('ab')).toBe(true);
    expect(compileIstioRegex('a|b').test('ab')).toBe(false);
  });

  it('uses a native RegExp only where JavaScript means what RE2 means', () => {
    for (const pattern of ['v1', '/reviews/[0-9]+', '^/api/v[12]/.*$', '.*\\.(jpg|png)', '(?:foo|bar)-\\d{1,3}', '']) {
      expect([pattern, compileIstioRegex(pattern).engine]).toEqual([pattern, 'native']);
    }
    for (const pattern of [
      '(?i)abc',
      '[[:digit:]]+',
      'a\\z',
      '\\Aabc',
      '\\pL+',
      '\\Qa.b\\E',
      '(?P<v>v[0-9])',
      '(?<v>v1)',
      '[]a]+',
      '\\x{41}',
      '(a+)+',
      '(a|b)*c',
      '[a-z]+-[0-9]+',
    ]) {
      expect([pattern, compileIstioRegex(pattern).engine]).toEqual([pattern, 're2']);
    }
  });

  it('gives RE2 answers where RE2 and JavaScript differ', () => {
    const caseless = compileIstioRegex('(?i)abc');
    expect([caseless.test('ABC'), caseless.test('aBc'), caseless.test('abcd')]).toEqual([true, true, false]);
    const digits = compileIstioRegex('[[:digit:]]+');
    expect([digits.test('123'), digits.test(':dig'), digits.test('12a')]).toEqual([true, false, false]);
    // In JavaScript `\z` is a literal `z`; in RE2 it is the end of the text.
    const end = compileIstioRegex('a\\z');
    expect([end.test('a'), end.test('az')]).toEqual([true, false]);
    // RE2's `.` matches `\r` and a whole astral character; RE2's `\s` does not match `\v`.
    expect(compileIstioRegex('a.b').test('a\rb')).toBe(true);
    expect(compileIstioRegex('a.b').test('a\u{1F600}b')).toBe(true);
    expect(compileIstioRegex('a.b').test('a\nb')).toBe(false);
    expect(compileIstioRegex('a\\sb').test('a\vb')).toBe(false);
    expect(compileIstioRegex('a\\sb').test('a\tb')).toBe(true);
    expect(compileIstioRegex('a\\sb').test('a\u00a0b')).toBe(false);
    const named = compileIstioRegex('(?P<v>v[0-9])');
    expect([named.test('v2'), named.test('v22')]).toEqual([true, false]);
  });

  it('does not backtrack badly on nested quantifiers', () => {
    const re = compileIstioRegex('(a+)+b');
    const start = performance.now();
    expect(re.test(`${'a'.repeat(5000)}c`)).toBe(false);
    expect(performance.now() - start).toBeLessThan(500);
  });

  it('rejects what RE2 rejects, with its reason', () => {
    expect(re2SyntaxError('(?=x)')).toBe('invalid or unsupported Perl syntax: `(?=`');
    expect(re2SyntaxError('(a)\\1')).toBe('invalid escape sequence: `\\1`');
    expect(re2SyntaxError('a{1001}')).toBe('invalid repeat count: `{1001}`');
    expect(re2SyntaxError('(a')).toBe('missing closing ): `(a`');
    expect(re2SyntaxError('^/v[0-9]+$')).toBeUndefined();
    expect(() => compileIstioRegex('(?<!x)y')).toThrow(SyntaxError);
    expect(() => compileIstioRegex('(?<!x)y')).toThrow('invalid RE2 regex "(?<!x)y": invalid named capture: `(?<!x)y`');
  });
});
