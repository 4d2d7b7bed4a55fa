import type { ValueMatcher } from './value-match.js';
import { escapeRegex } from './value-match.js';

/** What a path segment may hold in Envoy's URI templates (RFC 3986 pchar, minus nothing else). */
const SEGMENT = "[a-zA-Z0-9\\-._~%!$&'()+,;:@=]";

/** Whether an Istio path uses `{*}` or `{**}`. */
export function isPathTemplate(path: string): boolean {
  return path.includes('{*}') || path.includes('{**}');
}

/**
 * An Istio path template as Envoy's `uri_template` matcher reads it: `{*}` is one path segment
 * (no `/`, at least one character), `{**}` any number of characters including `/` (and must be
 * the last operator); the whole path must match.
 */
export function pathTemplate(template: string): ValueMatcher {
  const parts = template.split(/(\{\*\*\}|\{\*\})/);
  const source = parts.map((p) => (p === '{*}' ? `${SEGMENT}+` : p === '{**}' ? `(?:${SEGMENT}|/)*` : escapeRegex(p))).join('');
  const re = new RegExp(`^${source}$`);
  return { test: (v) => re.test(v) };
}
