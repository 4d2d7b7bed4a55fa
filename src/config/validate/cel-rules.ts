import { parseDuration } from '../../duration.js';
import { GATEWAY_CEL_RULES } from './gateway-api/cel-rules.js';

/**
 * A CEL rule from the CRDs, implemented in JavaScript. `check` receives the value the rule is
 * attached to (`self`), already known to have the schema's type, and returns whether it passes.
 * `found` describes the offending part for the error message.
 */
export interface EnforcedCelRule {
  readonly enforced: true;
  readonly check: (self: unknown) => boolean;
  readonly found?: (self: unknown) => string | undefined;
  /**
   * The field of `self` the rule is about, so the error names its path (as a CRD's `fieldPath`
   * would; Kubernetes reports at `self` when the CRD gives none).
   */
  readonly field?: string;
}

/** A rule deliberately not enforced, and why. */
export interface UnenforcedCelRule {
  readonly enforced: false;
  readonly reason: string;
}

export type CelRuleImplementation = EnforcedCelRule | UnenforcedCelRule;

type Obj = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** CEL `has(self.field)`: present and not null (Kubernetes prunes nulls before CEL runs). */
function has(self: unknown, field: string): boolean {
  return isObject(self) && self[field] !== undefined && self[field] !== null;
}

function keys(self: unknown): string[] {
  return isObject(self) ? Object.keys(self) : [];
}

function str(self: unknown): string {
  return typeof self === 'string' ? self : '';
}

function quoteList(values: readonly string[]): string {
  return values.map((v) => JSON.stringify(v)).join(', ');
}

function badKeys(predicate: (key: string) => boolean): Pick<EnforcedCelRule, 'check' | 'found'> {
  return {
    check: (self) => keys(self).every(predicate),
    found: (self) => {
      const bad = keys(self).filter((k) => !predicate(k));
      return bad.length > 0 ? `found ${bad.length === 1 ? 'key' : 'keys'} ${quoteList(bad)}` : undefined;
    },
  };
}

function atMostOne(fields: readonly string[]): Pick<EnforcedCelRule, 'check' | 'found'> {
  const set = (self: unknown): string[] => fields.filter((f) => has(self, f));
  return {
    check: (self) => set(self).length <= 1,
    found: (self) =>
      `found ${set(self)
        .map((f) => `'${f}'`)
        .join(' and ')}`,
  };
}

function enforced(rule: Pick<EnforcedCelRule, 'check' | 'found' | 'field'>): EnforcedCelRule {
  return { enforced: true, ...rule };
}

const PORT_NAME = /^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$/;

/**
 * Every CEL rule (`x-kubernetes-validations`) of the kinds sidecarless validates, keyed by the
 * exact rule text in the CRD. A rule sees `self` with the schema's defaults applied, as in
 * Kubernetes (only the Gateway API CRDs have defaults). `npm run generate` fails when a validated kind carries a rule that
 * is not listed here, so a new Istio schema cannot skip a check silently.
 */
export const CEL_RULES: ReadonlyMap<string, CelRuleImplementation> = new Map<string, CelRuleImplementation>([
  ['(has(self.jwksUri) ? 1 : 0) + (has(self.jwks_uri) ? 1 : 0) + (has(self.jwks) ? 1 : 0) <= 1', enforced(atMostOne(['jwksUri', 'jwks_uri', 'jwks']))],
  [
    'url(self).getScheme() in ["http", "https"]',
    enforced({
      check: (self) => /^https?:\/\//i.test(str(self)) && URL.canParse(str(self)),
      found: (self) => `found ${JSON.stringify(str(self))}`,
    }),
  ],
  [
    "duration(self) >= duration('1ms')",
    // An unparsable value is reported once, as a `duration` error, by the schema walk.
    enforced({ check: (self) => (parseDuration(str(self)) ?? Infinity) >= 1 }),
  ],
  ['self.all(key, !key.contains("*"))', enforced(badKeys((k) => !k.includes('*')))],
  ['self.all(key, key.size() != 0)', enforced(badKeys((k) => k.length !== 0))],
  ['!self.contains("*")', enforced({ check: (self) => !str(self).includes('*') })],
  ['self != "*"', enforced({ check: (self) => self !== '*' })],
  ['0 < self && self <= 65535', enforced({ check: (self) => typeof self === 'number' && self > 0 && self <= 65535 })],
  ['self.size() == 0', enforced({ check: (self) => str(self).length === 0 })],
  ['(has(self.workloadSelector) ? 1 : 0) + (has(self.endpoints) ? 1 : 0) <= 1', enforced(atMostOne(['workloadSelector', 'endpoints']))],
  [
    '!((has(self.addresses) ? self.addresses : []).exists(k, k.contains("/")) && !((has(self.resolution) ? self.resolution : "NONE") in ["STATIC", "NONE"]))',
    enforced({
      check: (self) => {
        const addresses = isObject(self) && Array.isArray(self['addresses']) ? self['addresses'] : [];
        const cidr = addresses.some((a) => typeof a === 'string' && a.includes('/'));
        const resolution = has(self, 'resolution') && isObject(self) ? self['resolution'] : 'NONE';
        return !(cidr && resolution !== 'STATIC' && resolution !== 'NONE');
      },
      found: (self) => (isObject(self) ? `found resolution ${JSON.stringify(self['resolution'])}` : undefined),
    }),
  ],
  [
    '((has(self.resolution) ? self.resolution : "NONE") == "NONE") ? !has(self.endpoints) : true',
    enforced({
      check: (self) => {
        const resolution = has(self, 'resolution') && isObject(self) ? self['resolution'] : 'NONE';
        return resolution !== 'NONE' || !has(self, 'endpoints');
      },
    }),
  ],
  [
    '((has(self.resolution) ? self.resolution : "") == "DNS_ROUND_ROBIN") ? ((has(self.endpoints) ? self.endpoints : []).size() <= 1) : true',
    enforced({
      check: (self) => !isObject(self) || self['resolution'] !== 'DNS_ROUND_ROBIN' || !Array.isArray(self['endpoints']) || self['endpoints'].length <= 1,
      found: (self) => (isObject(self) && Array.isArray(self['endpoints']) ? `found ${self['endpoints'].length} endpoints` : undefined),
    }),
  ],
  ['has(self.address) || has(self.network)', enforced({ check: (self) => has(self, 'address') || has(self, 'network') })],
  [
    '(has(self.address) ? self.address : "").startsWith("unix://") ? !has(self.ports) : true',
    enforced({
      check: (self) => !(isObject(self) && str(self['address']).startsWith('unix://') && has(self, 'ports')),
    }),
  ],
  [
    'self.startsWith("unix://") ? (self.substring(7, 8) == "/" || self.substring(7, 8) == "@") : true',
    enforced({
      check: (self) => {
        const s = str(self);
        return !s.startsWith('unix://') || s[7] === '/' || s[7] === '@';
      },
    }),
  ],
  ['self.startsWith("unix://") ? !self.endsWith("/") : true', enforced({ check: (self) => !(str(self).startsWith('unix://') && str(self).endsWith('/')) })],
  ['self.all(key, size(key) < 63 && key.matches("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$"))', enforced(badKeys((k) => k.length < 63 && PORT_NAME.test(k)))],
  [
    'self.all(l1, self.exists_one(l2, l1.number == l2.number))',
    enforced({
      check: (self) => duplicatePortNumbers(self).length === 0,
      found: (self) => `found ${duplicatePortNumbers(self).join(', ')} more than once`,
    }),
  ],
  ['(has(self.tlsCertificates) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1', enforced(atMostOne(['tlsCertificates', 'credentialNames']))],
  ['(has(self.credentialName) ? 1 : 0) + (has(self.credentialNames) ? 1 : 0) <= 1', enforced(atMostOne(['credentialName', 'credentialNames']))],
  ['(has(self.credentialNames) ? 1 : 0) + (has(self.tlsCertificates) ? 1 : 0) <= 1', enforced(atMostOne(['credentialNames', 'tlsCertificates']))],
  [
    '(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1',
    enforced(atMostOne(['selector', 'targetRef', 'targetRefs'])),
  ],
  [
    '(has(self.serviceAccounts) || has(self.notServiceAccounts)) ? (!has(self.principals) &&\n!has(self.notPrincipals) && !has(self.namespaces) && !has(self.notNamespaces)) : true',
    enforced({
      check: (self) =>
        !(has(self, 'serviceAccounts') || has(self, 'notServiceAccounts')) ||
        !['principals', 'notPrincipals', 'namespaces', 'notNamespaces'].some((f) => has(self, f)),
    }),
  ],
  [
    'has(self.portLevelMtls) ? (((has(self.selector) && has(self.selector.matchLabels)) ? self.selector.matchLabels : {}).size() > 0) : true',
    enforced({
      check: (self) => {
        if (!has(self, 'portLevelMtls') || !isObject(self)) return true;
        const selector = self['selector'];
        return isObject(selector) && keys(selector['matchLabels']).length > 0;
      },
    }),
  ],
  ['self.all(key, 0 < int(key) && int(key) <= 65535)', enforced(badKeys(isPortKey))],
  ['(has(self.workloadSelector) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1', enforced(atMostOne(['workloadSelector', 'targetRefs']))],
  [
    'has(self.context) ? ((self.context == "WAYPOINT") ? has(self.waypoint) : !has(self.waypoint)) : !has(self.waypoint)',
    enforced({
      check: (self) => (isObject(self) && self['context'] === 'WAYPOINT') === has(self, 'waypoint'),
      found: (self) => (isObject(self) ? `found context ${JSON.stringify(self['context'] ?? null)}` : undefined),
    }),
  ],
  // RateLimitPolicy (deploy/crds/): a key names exactly one request attribute.
  [
    '(has(self.header) ? 1 : 0) + (has(self.queryParameter) ? 1 : 0) == 1',
    enforced({
      check: (self) => (has(self, 'header') ? 1 : 0) + (has(self, 'queryParameter') ? 1 : 0) === 1,
      found: (self) => (has(self, 'header') ? "found both 'header' and 'queryParameter'" : 'found neither'),
    }),
  ],
  // HTTPRoute and GRPCRoute (schema/gateway-api/).
  ...GATEWAY_CEL_RULES,
]);

/** CEL `int(string)` (Go's strconv.ParseInt, base 10) in 1..65535. */
function isPortKey(key: string): boolean {
  if (!/^[+-]?\d+$/.test(key)) return false;
  const n = Number(key);
  return n > 0 && n <= 65535;
}

function duplicatePortNumbers(self: unknown): number[] {
  const seen = new Set<number>();
  const duplicates = new Set<number>();
  for (const item of Array.isArray(self) ? self : []) {
    const n: unknown = isObject(item) ? item['number'] : undefined;
    if (typeof n !== 'number') continue;
    if (seen.has(n)) duplicates.add(n);
    seen.add(n);
  }
  return [...duplicates];
}
