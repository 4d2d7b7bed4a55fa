/** One compiled Istio value of a policy field: it tests a request attribute. */
export interface ValueMatcher {
  test(value: string): boolean;
}

const PRESENT: ValueMatcher = { test: (v) => v.length > 0 };

/**
 * Istio's string values (`matcher.StringMatcherWithPrefix`): `*` matches any non-empty value,
 * `*abc` a suffix, `abc*` a prefix, anything else exactly; `prefix` is put in front of the value
 * (`spiffe://` for principals). `ignoreCase` for hosts.
 */
export function stringValue(value: string, prefix = '', ignoreCase = false): ValueMatcher {
  const fold = (s: string): string => (ignoreCase ? s.toLowerCase() : s);
  if (value === '*') return prefix === '' ? PRESENT : { test: (v) => v.length > prefix.length && v.startsWith(prefix) };
  if (value.startsWith('*')) {
    const suffix = fold(value.slice(1));
    return prefix === '' ? { test: (v) => fold(v).endsWith(suffix) } : { test: (v) => v.startsWith(prefix) && fold(v).endsWith(suffix) };
  }
  if (value.endsWith('*')) {
    const start = fold(prefix + value.slice(0, -1));
    return { test: (v) => fold(v).startsWith(start) };
  }
  const exact = fold(prefix + value);
  return ignoreCase ? { test: (v) => v.toLowerCase() === exact } : { test: (v) => v === exact };
}

/**
 * Istio's header values (`matcher.HeaderMatcher`): `*` is a presence match (any value, even
 * empty), `*abc` a suffix, `abc*` a prefix, else exact.
 */
export function headerValue(value: string, ignoreCase = false): ValueMatcher {
  if (value === '*') return { test: () => true };
  return stringValue(value, '', ignoreCase);
}

/** Any of the matchers. */
export function anyOf(matchers: readonly ValueMatcher[]): ValueMatcher {
  if (matchers.length === 1) return matchers[0]!;
  return {
    test: (v) => {
      for (let i = 0; i < matchers.length; i++) if (matchers[i]!.test(v)) return true;
      return false;
    },
  };
}

/** `source.namespace` / `namespaces`: the namespace of the SPIFFE ID, `*` standing for any text. */
export function namespaceValue(value: string): ValueMatcher {
  const pattern = value.split('*').map(escapeRegex).join('.*');
  const re = new RegExp(`^.*/ns/${pattern}/.*$`, 's');
  return { test: (v) => re.test(v) };
}

/** `source.serviceAccount` / `serviceAccounts`: `sa` or `ns/sa` (the policy's namespace when omitted). */
export function serviceAccountValue(value: string, policyNamespace: string): ValueMatcher {
  const slash = value.indexOf('/');
  const ns = slash >= 0 ? value.slice(0, slash) : policyNamespace;
  const sa = slash >= 0 ? value.slice(slash + 1) : value;
  const re = new RegExp(`^spiffe://.+/ns/${escapeRegex(ns)}/(.+/|)sa/${escapeRegex(sa)}(/.+)?$`, 's');
  return { test: (v) => re.test(v) };
}

/** `source.trustDomain` / `trustDomains`, matched on the SPIFFE ID. */
export function trustDomainValue(value: string): ValueMatcher {
  if (value === '*') return { test: (v) => v.startsWith('spiffe://') };
  if (!value.includes('*')) {
    const start = `spiffe://${value}/`;
    return { test: (v) => v.startsWith(start) };
  }
  const [before, after] = [value.slice(0, value.indexOf('*')), value.slice(value.indexOf('*') + 1)];
  const re = new RegExp(`^spiffe://${escapeRegex(before)}[^/]*${escapeRegex(after)}/.*$`, 's');
  return { test: (v) => re.test(v) };
}

/**
 * `requestPrincipals` / `request.auth.principal` (`iss/sub`): split at the last `/`, issuer and
 * subject matched apart, as istiod builds it (`*`, `*` + `/sub`, `iss/*`, `*suffix`, `prefix*`).
 */
export function requestPrincipalValue(value: string): (issuer: string, subject: string) => boolean {
  const any = (s: string): boolean => s.length > 0;
  const idx = value.lastIndexOf('/');
  const found = idx >= 0;
  const iss = found ? value.slice(0, idx) : value;
  const sub = found ? value.slice(idx + 1) : '';
  if (value === '*') return (i, s) => any(i) && any(s);
  if (value.startsWith('*')) {
    if (found) {
      const issOk =
        iss === '*'
          ? any
          : (
              (suffix) => (i: string) =>
                i.endsWith(suffix)
            )(iss.slice(1));
      return (i, s) => issOk(i) && s === sub;
    }
    const suffix = value.slice(1);
    return (i, s) => any(i) && s.endsWith(suffix);
  }
  if (value.endsWith('*')) {
    if (found) {
      const subOk =
        sub === '*'
          ? any
          : (
              (prefix) => (s: string) =>
                s.startsWith(prefix)
            )(sub.slice(0, -1));
      return (i, s) => i === iss && subOk(s);
    }
    const prefix = value.slice(0, -1);
    return (i, s) => i.startsWith(prefix) && any(s);
  }
  return (i, s) => i === iss && s === sub;
}

export function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
