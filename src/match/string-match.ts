import { compileIstioRegex } from './regex.js';

/** Istio's StringMatch: one of exact, prefix, regex (RE2, whole string). */
export interface StringMatchSpec {
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
  /**
   * The Gateway API's PathPrefix, element by element (`/foo` matches `/foo` and `/foo/bar`, not
   * `/foobar`). Only routes converted from HTTPRoutes carry it; Istio documents cannot.
   */
  readonly pathPrefix?: string;
}

/** A compiled string condition. `describe` is for explain output. */
export interface StringMatcher {
  test(value: string): boolean;
  readonly describe: string;
}

const anything: StringMatcher = { test: () => true, describe: 'present' };

/**
 * Compiles a StringMatch once per snapshot. `ignoreCase` applies to exact and prefix only, as
 * Envoy's `case_sensitive: false` does (it has no effect on regexes).
 */
export function compileStringMatch(spec: StringMatchSpec, ignoreCase = false): StringMatcher {
  if (spec.exact !== undefined) {
    const want = ignoreCase ? spec.exact.toLowerCase() : spec.exact;
    return ignoreCase
      ? { test: (v) => v.length === want.length && v.toLowerCase() === want, describe: `exact "${spec.exact}" (any case)` }
      : { test: (v) => v === want, describe: `exact "${spec.exact}"` };
  }
  if (spec.prefix !== undefined) {
    const want = ignoreCase ? spec.prefix.toLowerCase() : spec.prefix;
    return ignoreCase
      ? { test: (v) => v.length >= want.length && v.slice(0, want.length).toLowerCase() === want, describe: `prefix "${spec.prefix}" (any case)` }
      : { test: (v) => v.startsWith(want), describe: `prefix "${spec.prefix}"` };
  }
  if (spec.pathPrefix !== undefined) {
    const want = spec.pathPrefix.replace(/\/+$/, '');
    const withSlash = `${want}/`;
    return { test: (v) => v === want || v.startsWith(withSlash), describe: `path prefix "${spec.pathPrefix}"` };
  }
  if (spec.regex !== undefined) {
    const re = compileIstioRegex(spec.regex);
    return { test: (v) => re.test(v), describe: `regex "${spec.regex}"` };
  }
  // `{}`: Istio turns an empty match on a header or query parameter into a presence check.
  return anything;
}
