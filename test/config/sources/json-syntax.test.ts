import { describe, expect, it } from 'vitest';
import { findJsonSyntaxError } from '../../../src/config/sources/json-syntax.js';

describe('findJsonSyntaxError', () => {
  it.each([
    ['{"a": }', 6, "expected a value, found '}'"],
    ['{"a": 1,}', 8, "trailing comma before '}'"],
    ['[1, 2,]', 6, "trailing comma before ']'"],
    ['[1 2]', 3, "expected ',' or ']' after a list element, found '2'"],
    ["{'a': 1}", 1, "expected a property name in double quotes, found '''"],
    ['{"a" 1}', 5, "expected ':' after the property name, found '1'"],
    ['{"a": "x', 6, 'unterminated string'],
    ['{"a": 01}', 6, 'invalid number'],
    ['{"a": "\\x"}', 7, "invalid escape sequence '\\x'"],
    ['{"a": tru}', 6, "expected a value, found 't'"],
    ['{"a": 1', 7, "expected ',' or '}' after a property value, found the end of the file"],
    ['{} {}', 3, expect.stringMatching(/^unexpected content after the JSON value/)],
  ])('%s', (text, offset, message) => {
    expect(findJsonSyntaxError(text)).toEqual({ offset, message });
  });

  it('accepts valid JSON', () => {
    expect(findJsonSyntaxError('{"a": [1, -2.5e3, true, false, null, "x\\u00e9\\n"], "b": {}}')).toBeUndefined();
  });
});
