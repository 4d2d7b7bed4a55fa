/**
 * Host name rules as Istio applies them to resources: a short name (no dot) in a resource means a
 * Kubernetes service in the resource's own namespace; anything with a dot is taken as written.
 */
export function qualifyHost(host: string, namespace: string, clusterDomain: string): string {
  const lower = host.toLowerCase();
  if (lower === '*' || lower.includes('.')) return lower;
  return `${lower}.${namespace}.svc.${clusterDomain}`;
}

/**
 * Does `pattern` (possibly `*.example.com` or `*`) cover the concrete host `host`? A wildcard
 * covers any host ending in its suffix (Envoy's virtual host domain rules; `*` covers everything).
 */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === host) return true;
  if (!pattern.startsWith('*')) return false;
  const suffix = pattern.slice(1);
  return host.length > suffix.length && host.endsWith(suffix);
}

/** Orders wildcard patterns most specific first: longer suffix wins, as in Envoy. */
export function bySpecificity(a: string, b: string): number {
  return b.length - a.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** Up to this many wildcards a lookup tries them in turn; beyond, it looks the host's suffixes up. */
const SCAN_WILDCARDS = 16;

interface Wildcard<T> {
  readonly suffix: string;
  readonly pattern: string;
  readonly value: T;
}

/**
 * A lookup table from host to value with Envoy's precedence: an exact host beats any wildcard,
 * and among wildcards the longest suffix wins. Built once per snapshot; a lookup costs the same
 * however many hosts the table holds.
 */
export class HostTable<T> {
  private readonly exact = new Map<string, T>();
  /** Wildcards by suffix (`*.example.com` → `.example.com`; `*` → ``). */
  private readonly wildcards = new Map<string, Wildcard<T>>();
  private sorted: Wildcard<T>[] | undefined;

  set(pattern: string, value: T): void {
    if (!pattern.startsWith('*')) {
      this.exact.set(pattern, value);
      return;
    }
    const suffix = pattern.slice(1);
    // A replaced wildcard keeps its place, as the map keeps the first insertion's order.
    this.wildcards.set(suffix, { pattern, suffix, value });
    this.sorted = undefined;
  }

  /** The value registered for exactly this pattern. */
  getPattern(pattern: string): T | undefined {
    if (!pattern.startsWith('*')) return this.exact.get(pattern);
    return this.wildcards.get(pattern.slice(1))?.value;
  }

  /** The most specific value covering a concrete host. */
  lookup(host: string): T | undefined {
    const hit = this.exact.get(host);
    if (hit !== undefined) return hit;
    const count = this.wildcards.size;
    if (count === 0) return undefined;
    if (count <= SCAN_WILDCARDS) {
      this.sorted ??= [...this.wildcards.values()].sort((a, b) => bySpecificity(a.pattern, b.pattern));
      for (const w of this.sorted) {
        if (w.suffix === '' || (host.length > w.suffix.length && host.endsWith(w.suffix))) return w.value;
      }
      return undefined;
    }
    // Longest proper suffix first; `*` (the empty suffix) last.
    for (let i = 1; i < host.length; i++) {
      const w = this.wildcards.get(host.slice(i));
      if (w) return w.value;
    }
    return this.wildcards.get('')?.value;
  }

  /** Patterns and values, exact ones first. */
  *entries(): IterableIterator<[string, T]> {
    yield* this.exact.entries();
    for (const w of this.wildcards.values()) yield [w.pattern, w.value];
  }

  get size(): number {
    return this.exact.size + this.wildcards.size;
  }
}
