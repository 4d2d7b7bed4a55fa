import type { HttpMatchSpec } from '../match/http-match.js';
import type { StringMatchSpec } from '../match/string-match.js';

/**
 * Merges a root VirtualService's match with a delegate's, as Istio does: the delegate may narrow
 * the root's conditions but not contradict them. Returns undefined on a conflict (that combination
 * never matches and is dropped).
 */
export function mergeDelegateMatch(root: HttpMatchSpec, child: HttpMatchSpec): HttpMatchSpec | undefined {
  const uri = mergeUri(root.uri, child.uri);
  if (uri === conflict) return undefined;
  const out: Record<string, unknown> = { ...root, ...child };
  if (uri) out.uri = uri;
  for (const key of ['scheme', 'method', 'authority'] as const) {
    const merged = mergeSame(root[key], child[key]);
    if (merged === conflict) return undefined;
    if (merged) out[key] = merged;
  }
  if (root.port !== undefined && child.port !== undefined && root.port !== child.port) return undefined;
  if (root.sourceNamespace !== undefined && child.sourceNamespace !== undefined && root.sourceNamespace !== child.sourceNamespace) return undefined;
  for (const key of ['headers', 'withoutHeaders', 'queryParams'] as const) {
    const merged = mergeMaps(root[key], child[key]);
    if (merged === conflict) return undefined;
    if (merged) out[key] = merged;
  }
  const labels = mergeMaps(root.sourceLabels, child.sourceLabels);
  if (labels === conflict) return undefined;
  if (labels) out.sourceLabels = labels;
  return out as HttpMatchSpec;
}

const conflict = Symbol('conflict');

function same(a: StringMatchSpec, b: StringMatchSpec): boolean {
  return a.exact === b.exact && a.prefix === b.prefix && a.regex === b.regex;
}

function mergeSame(a: StringMatchSpec | undefined, b: StringMatchSpec | undefined): StringMatchSpec | undefined | typeof conflict {
  if (!a) return b;
  if (!b) return a;
  return same(a, b) ? b : conflict;
}

/** The delegate's uri must lie within the root's: a prefix may only get longer. */
function mergeUri(root: StringMatchSpec | undefined, child: StringMatchSpec | undefined): StringMatchSpec | undefined | typeof conflict {
  if (!root) return child;
  if (!child) return root;
  if (root.prefix !== undefined) {
    if (child.prefix !== undefined) return child.prefix.startsWith(root.prefix) ? child : conflict;
    if (child.exact !== undefined) return child.exact.startsWith(root.prefix) ? child : conflict;
    return conflict;
  }
  return same(root, child) ? child : conflict;
}

function mergeMaps<T>(a: Readonly<Record<string, T>> | undefined, b: Readonly<Record<string, T>> | undefined): Record<string, T> | undefined | typeof conflict {
  if (!a) return b ? { ...b } : undefined;
  if (!b) return { ...a };
  const out: Record<string, T> = { ...a };
  for (const [key, value] of Object.entries(b)) {
    if (key in out && JSON.stringify(out[key]) !== JSON.stringify(value)) return conflict;
    out[key] = value;
  }
  return out;
}
