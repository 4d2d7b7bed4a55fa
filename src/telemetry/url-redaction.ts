/**
 * Query parameters whose values the HTTP semantic conventions ask to redact in `url.full`
 * (signed URLs of the main object stores).
 */
const SENSITIVE_QUERY: ReadonlySet<string> = new Set(['AWSAccessKeyId', 'Signature', 'sig', 'X-Goog-Signature']);

/**
 * `url.full` as the conventions want it: user and password replaced with `REDACTED:REDACTED`, and
 * the values of sensitive query parameters with `REDACTED`. Cheap for the common URL: a query
 * string is only split when it names one of them.
 */
export function redactedUrl(scheme: string, authority: string, path: string, userinfo: boolean): string {
  const q = path.indexOf('?');
  let safePath = path;
  if (q >= 0 && hasSensitiveName(path, q)) {
    const parts = path.slice(q + 1).split('&');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      const eq = part.indexOf('=');
      if (eq > 0 && SENSITIVE_QUERY.has(part.slice(0, eq))) parts[i] = `${part.slice(0, eq)}=REDACTED`;
    }
    safePath = `${path.slice(0, q)}?${parts.join('&')}`;
  }
  return `${scheme}://${userinfo ? 'REDACTED:REDACTED@' : ''}${authority}${safePath}`;
}

function hasSensitiveName(path: string, from: number): boolean {
  for (const name of SENSITIVE_QUERY) if (path.includes(`${name}=`, from)) return true;
  return false;
}
