// Plain words for the regular expressions the CRDs constrain strings with, so an error says what
// was expected ("a hostname such as ...") rather than only printing the expression.

const GATEWAY_DURATION = 'a duration such as "10s", "500ms" or "1m30s" (units h, m, s, ms; at most 5 digits each)';
const DNS_SUBDOMAIN = "lowercase letters, digits, '-' and '.', starting and ending with a letter or digit";

const NAMES: ReadonlyMap<string, string> = new Map([
  ['^([0-9]{1,5}(h|m|s|ms)){1,4}$', GATEWAY_DURATION],
  ['^(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$', 'a hostname such as "shop.example.com" or "*.example.com"'],
  ['^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$', `a DNS name of ${DNS_SUBDOMAIN} (such as "shop.example.com")`],
  ['^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$', `an API group: "" (core) or ${DNS_SUBDOMAIN}`],
  ['^[a-z0-9]([-a-z0-9]*[a-z0-9])?$', "a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit)"],
  ['^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$', 'a kind such as "Service" (letters, digits and \'-\', starting with a letter)'],
  ["^[A-Za-z0-9!#$%&'*+\\-.^_\\x60|~]+$", "an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"],
]);

/** What a value matching `pattern` is, in words, with the pattern for reference. */
export function describePattern(pattern: string): string {
  const name = NAMES.get(pattern);
  return name ? `${name}, matching ${pattern}` : `a value matching ${pattern}`;
}
