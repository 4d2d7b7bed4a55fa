/**
 * What route matching reads of a request. The data path fills one per request from what it already
 * has (no copies of headers); the query string is parsed only if a route asks for query params.
 */
export interface RouteRequest {
  /** Upper-case method. */
  readonly method: string;
  /** `http` or `https`. */
  readonly scheme: string;
  /** Host[:port] as the caller wrote it (Host / :authority). */
  readonly authority: string;
  /** The port the caller addressed. */
  readonly port: number;
  /** Path without the query string, e.g. `/reviews/1`. */
  readonly path: string;
  /** Query string without `?`, or '' when there is none. */
  readonly query: string;
  /** Header value by lower-case name; several values joined by `,`. */
  header(name: string): string | undefined;
}

/** Who is calling: the mesh's own workload, for `sourceLabels` and `sourceNamespace`. */
export interface RouteSource {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Parses a query string once, keeping the first value of each name (Envoy's behaviour). */
export function parseQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  if (query === '') return out;
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawName = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
    const name = safeDecode(rawName);
    if (!out.has(name)) out.set(name, safeDecode(rawValue));
  }
  return out;
}

function safeDecode(text: string): string {
  const plus = text.includes('+') ? text.replace(/\+/g, ' ') : text;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}
