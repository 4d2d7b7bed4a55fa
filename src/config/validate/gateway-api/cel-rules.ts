// The CEL rules of the Gateway API HTTPRoute and GRPCRoute CRDs (schema/gateway-api/), each
// implemented once though it repeats across versions and filter lists. The schema walk hands each
// rule `self` with the CRD's defaults applied, as Kubernetes evaluates CEL after defaulting.
import { parseDuration } from '../../../duration.js';

interface Unenforced {
  readonly enforced: false;
  readonly reason: string;
}

interface Implementation {
  readonly enforced: true;
  readonly check: (self: unknown) => boolean;
  readonly found?: (self: unknown) => string | undefined;
  readonly field?: string;
}

type Obj = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function has(self: unknown, field: string): boolean {
  return isObject(self) && self[field] !== undefined && self[field] !== null;
}

function get(self: unknown, field: string): unknown {
  return isObject(self) ? self[field] : undefined;
}

function list(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/** `field`: the field of `self` the error is reported at (see EnforcedCelRule in ../cel-rules.ts). */
function rule(check: (self: unknown) => boolean, found?: (self: unknown) => string | undefined, field?: string): Implementation {
  return { enforced: true, check, ...(found ? { found } : {}), ...(field ? { field } : {}) };
}

// parentRefs: two references name the same parent when group, kind, name and namespace (unset
// and '' alike) agree; sectionName then tells them apart.
const PARENT_SAME =
  "p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name && (((!has(p1.__namespace__) || p1.__namespace__ == '') && (!has(p2.__namespace__) || p2.__namespace__ == '')) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__ ))";

function parentKey(p: unknown): string {
  return JSON.stringify([get(p, 'group'), get(p, 'kind'), get(p, 'name'), str(get(p, 'namespace'))]);
}

function sectionName(p: unknown): string {
  return str(get(p, 'sectionName'));
}

/** A parentRef's port, 0 when unset (the CRD treats both alike). */
function port(p: unknown): number {
  const n = get(p, 'port');
  return typeof n === 'number' ? n : 0;
}

/** Both or neither set a sectionName, and both or neither a port. */
function sameEmptiness(a: unknown, b: unknown): boolean {
  return (sectionName(a) === '') === (sectionName(b) === '') && (port(a) === 0) === (port(b) === 0);
}

function repeatedNames(self: unknown): string[] {
  const names = list(self).flatMap((r) => (typeof get(r, 'name') === 'string' ? [get(r, 'name') as string] : []));
  return [...new Set(names.filter((n, i) => names.indexOf(n) !== i))];
}

/** The parents named more than once where the rule's predicate fails, for the message. */
function repeatedParents(self: unknown, bad: (a: unknown, b: unknown) => boolean): string | undefined {
  const refs = list(self);
  for (const a of refs) {
    for (const b of refs) {
      if (a !== b && parentKey(a) === parentKey(b) && bad(a, b)) return `found ${str(get(a, 'kind'))} ${JSON.stringify(get(a, 'name'))} more than once`;
    }
  }
  return undefined;
}

/** The CRD spells the sum of matches over the (at most 16) rules out term by term. */
function matchTotalRule(guarded: boolean): string {
  const term = (i: number): string =>
    guarded ? `(self.size() > ${i} ? (has(self[${i}].matches) ? self[${i}].matches.size() : 0) : 0)` : `(self.size() > ${i} ? self[${i}].matches.size() : 0)`;
  return `${Array.from({ length: 16 }, (_, i) => term(i)).join(' + ')} <= 128`;
}

function matchTotal(self: unknown): number {
  return list(self)
    .slice(0, 16)
    .reduce<number>((n, r) => n + list(get(r, 'matches')).length, 0);
}

/** `f.<filter>.path.type == 'ReplacePrefixMatch' && has(f.<filter>.path.replacePrefixMatch)`. */
function prefixRewrite(filter: unknown, field: string): boolean {
  const path = get(get(filter, field), 'path');
  return get(path, 'type') === 'ReplacePrefixMatch' && has(path, 'replacePrefixMatch');
}

function exactlyOne<T>(items: readonly T[], predicate: (item: T) => boolean): boolean {
  return items.filter(predicate).length === 1;
}

/** A rule's single match is a PathPrefix match (what ReplacePrefixMatch needs). */
function onePrefixMatch(self: unknown): boolean {
  const matches = list(get(self, 'matches'));
  return matches.length === 1 && has(matches[0], 'path') && get(get(matches[0], 'path'), 'type') === 'PathPrefix';
}

function matchesFound(self: unknown): string {
  const matches = list(get(self, 'matches'));
  const types = matches.map((m) => (has(m, 'path') ? str(get(get(m, 'path'), 'type')) : 'no path'));
  return `found ${matches.length} ${matches.length === 1 ? 'match' : 'matches'}${types.length > 0 ? ` (${types.join(', ')})` : ''}`;
}

const FILTER_FIELDS: ReadonlyArray<readonly [string, string]> = [
  ['cors', 'CORS'],
  ['requestHeaderModifier', 'RequestHeaderModifier'],
  ['responseHeaderModifier', 'ResponseHeaderModifier'],
  ['requestMirror', 'RequestMirror'],
  ['requestRedirect', 'RequestRedirect'],
  ['urlRewrite', 'URLRewrite'],
  ['extensionRef', 'ExtensionRef'],
  ['externalAuth', 'ExternalAuth'],
];

function filterTypeFound(self: unknown): string {
  return `found type ${JSON.stringify(get(self, 'type') ?? null)}`;
}

const PATH_TYPES = "(self.type in ['Exact','PathPrefix'])";
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;

/** A path match rule that applies to Exact and PathPrefix values only. */
function pathRule(test: (value: string) => boolean): Implementation {
  return rule(
    (self) => !['Exact', 'PathPrefix'].includes(str(get(self, 'type'))) || test(str(get(self, 'value'))),
    (self) => `found ${JSON.stringify(get(self, 'value'))}`,
    'value',
  );
}

const GRPC_SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

function grpcExact(self: unknown): boolean {
  return !has(self, 'type') || get(self, 'type') === 'Exact';
}

function ms(value: unknown): number {
  return parseDuration(str(value)) ?? 0;
}

/** Every distinct CEL rule of the HTTPRoute (v1, v1beta1) and GRPCRoute (v1) CRDs, by rule text. */
export const GATEWAY_CEL_RULES: ReadonlyArray<readonly [string, Implementation | Unenforced]> = [
  [
    `self.all(p1, self.all(p2, ${PARENT_SAME.replace(' ))', '))')} ? ((!has(p1.sectionName) || p1.sectionName == '') == (!has(p2.sectionName) || p2.sectionName == '') && (!has(p1.port) || p1.port == 0) == (!has(p2.port) || p2.port == 0)): true))`,
    rule(
      (self) => repeatedParents(self, (a, b) => !sameEmptiness(a, b)) === undefined,
      (self) => repeatedParents(self, (a, b) => !sameEmptiness(a, b)),
    ),
  ],
  [
    `self.all(p1, self.exists_one(p2, ${PARENT_SAME} && (((!has(p1.sectionName) || p1.sectionName == '') && (!has(p2.sectionName) || p2.sectionName == '')) || ( has(p1.sectionName) && has(p2.sectionName) && p1.sectionName == p2.sectionName)) && (((!has(p1.port) || p1.port == 0) && (!has(p2.port) || p2.port == 0)) || (has(p1.port) && has(p2.port) && p1.port == p2.port))))`,
    rule(
      (self) => repeatedParents(self, (a, b) => sectionName(a) === sectionName(b) && port(a) === port(b)) === undefined,
      (self) => repeatedParents(self, (a, b) => sectionName(a) === sectionName(b) && port(a) === port(b)),
    ),
  ],
  [
    'self.all(l1, !has(l1.name) || self.exists_one(l2, has(l2.name) && l1.name == l2.name))',
    rule(
      (self) => repeatedNames(self).length === 0,
      (self) =>
        `found ${repeatedNames(self)
          .map((n) => JSON.stringify(n))
          .join(', ')} more than once`,
    ),
  ],
  [
    matchTotalRule(false),
    rule(
      (self) => matchTotal(self) <= 128,
      (self) => `found ${matchTotal(self)}`,
    ),
  ],
  [
    matchTotalRule(true),
    rule(
      (self) => matchTotal(self) <= 128,
      (self) => `found ${matchTotal(self)}`,
    ),
  ],
  [
    '(has(self.backendRefs) && size(self.backendRefs) > 0) ? (!has(self.filters) || self.filters.all(f, !has(f.requestRedirect))): true',
    rule(
      (self) => list(get(self, 'backendRefs')).length === 0 || list(get(self, 'filters')).every((f) => !has(f, 'requestRedirect')),
      undefined,
      'backendRefs',
    ),
  ],
  ...(['requestRedirect', 'urlRewrite'] as const).flatMap((field): Array<readonly [string, Implementation]> => {
    const test = `f.${field}.path.type == 'ReplacePrefixMatch' && has(f.${field}.path.replacePrefixMatch)`;
    const then = "((size(self.matches) != 1 || !has(self.matches[0].path) || self.matches[0].path.type != 'PathPrefix') ? false : true) : true";
    return [
      [
        `(has(self.filters) && self.filters.exists_one(f, has(f.${field}) && has(f.${field}.path) && ${test})) ? ${then}`,
        rule((self) => !exactlyOne(list(get(self, 'filters')), (f) => prefixRewrite(f, field)) || onePrefixMatch(self), matchesFound, 'matches'),
      ],
      [
        `(has(self.backendRefs) && self.backendRefs.exists_one(b, (has(b.filters) && b.filters.exists_one(f, has(f.${field}) && has(f.${field}.path) && ${test})) )) ? ${then}`,
        rule(
          (self) =>
            !exactlyOne(list(get(self, 'backendRefs')), (b) => exactlyOne(list(get(b, 'filters')), (f) => prefixRewrite(f, field))) || onePrefixMatch(self),
          matchesFound,
          'matches',
        ),
      ],
    ];
  }),
  [
    "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true",
    rule((self) => !(str(get(self, 'group')) === '' && get(self, 'kind') === 'Service') || has(self, 'port'), undefined, 'port'),
  ],
  [
    "!(self.exists(f, f.type == 'RequestRedirect') && self.exists(f, f.type == 'URLRewrite'))",
    rule(
      (self) => !(list(self).some((f) => get(f, 'type') === 'RequestRedirect') && list(self).some((f) => get(f, 'type') === 'URLRewrite')),
      () => 'found both a RequestRedirect and a URLRewrite filter',
    ),
  ],
  ...['CORS', 'RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'].map((type): readonly [string, Implementation] => [
    `self.filter(f, f.type == '${type}').size() <= 1`,
    rule(
      (self) => list(self).filter((f) => get(f, 'type') === type).length <= 1,
      (self) => `found ${list(self).filter((f) => get(f, 'type') === type).length}`,
    ),
  ]),
  ...FILTER_FIELDS.flatMap(([field, type]): Array<readonly [string, Implementation]> => [
    [`!(has(self.${field}) && self.type != '${type}')`, rule((self) => !(has(self, field) && get(self, 'type') !== type), filterTypeFound, field)],
    [`!(!has(self.${field}) && self.type == '${type}')`, rule((self) => !(!has(self, field) && get(self, 'type') === type), undefined, field)],
  ]),
  [
    "!('*' in self && self.size() > 1)",
    rule(
      (self) => !(list(self).includes('*') && list(self).length > 1),
      (self) =>
        `found ${list(self)
          .map((v) => JSON.stringify(v))
          .join(', ')}`,
    ),
  ],
  ...(['GRPC', 'HTTP'] as const).flatMap((protocol): Array<readonly [string, Implementation]> => {
    const field = protocol.toLowerCase();
    return [
      [`self.protocol == '${protocol}' ? has(self.${field}) : true`, rule((self) => get(self, 'protocol') !== protocol || has(self, field), undefined, field)],
      [`has(self.${field}) ? self.protocol == '${protocol}' : true`, rule((self) => !has(self, field) || get(self, 'protocol') === protocol, undefined, field)],
    ];
  }),
  [
    "!has(self.cookieConfig) || !has(self.cookieConfig.lifetimeType) || self.cookieConfig.lifetimeType != 'Permanent' || has(self.absoluteTimeout)",
    rule((self) => get(get(self, 'cookieConfig'), 'lifetimeType') !== 'Permanent' || has(self, 'absoluteTimeout'), undefined, 'absoluteTimeout'),
  ],
  [
    "!has(self.cookieConfig) || self.type == 'Cookie'",
    rule((self) => !has(self, 'cookieConfig') || get(self, 'type') === 'Cookie', filterTypeFound, 'cookieConfig'),
  ],
  ['!(has(self.percent) && has(self.fraction))', rule((self) => !(has(self, 'percent') && has(self, 'fraction')))],
  [
    'self.numerator <= self.denominator',
    rule(
      // A non-integer is reported once, as a type error, by the schema walk.
      (self) => !(Number(get(self, 'numerator')) > Number(get(self, 'denominator') ?? 100)),
      (self) => `found ${String(get(self, 'numerator'))}/${String(get(self, 'denominator') ?? 100)}`,
      'numerator',
    ),
  ],
  ...(['ReplaceFullPath', 'ReplacePrefixMatch'] as const).flatMap((type): Array<readonly [string, Implementation]> => {
    const field = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
    return [
      [`self.type == '${type}' ? has(self.${field}) : true`, rule((self) => get(self, 'type') !== type || has(self, field), undefined, field)],
      [`has(self.${field}) ? self.type == '${type}' : true`, rule((self) => !has(self, field) || get(self, 'type') === type, filterTypeFound, field)],
    ];
  }),
  [`${PATH_TYPES} ? self.value.startsWith('/') : true`, pathRule((v) => v.startsWith('/'))],
  ...['//', '/./', '/../', '%2f', '%2F', '#'].map((part): readonly [string, Implementation] => [
    `${PATH_TYPES} ? !self.value.contains('${part}') : true`,
    pathRule((v) => !v.includes(part)),
  ]),
  ...['/..', '/.'].map((end): readonly [string, Implementation] => [
    `${PATH_TYPES} ? !self.value.endsWith('${end}') : true`,
    pathRule((v) => !v.endsWith(end)),
  ]),
  [
    "self.type in ['Exact','PathPrefix'] || self.type == 'RegularExpression'",
    {
      enforced: false,
      reason: 'the enum on the same field (type) says it already; the schema walk reports it once, as an enum error',
    },
  ],
  [`${PATH_TYPES} ? self.value.matches(r"""^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$""") : true`, pathRule((v) => PATH_CHARS.test(v))],
  [
    "!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration('0s') && duration(self.backendRequest) > duration(self.request))",
    rule(
      (self) =>
        !(has(self, 'request') && has(self, 'backendRequest') && ms(get(self, 'request')) !== 0 && ms(get(self, 'backendRequest')) > ms(get(self, 'request'))),
      (self) => `found request ${JSON.stringify(get(self, 'request'))}, backendRequest ${JSON.stringify(get(self, 'backendRequest'))}`,
      'backendRequest',
    ),
  ],
  ['has(self.type) ? has(self.service) || has(self.method) : true', rule((self) => !has(self, 'type') || has(self, 'service') || has(self, 'method'))],
  [
    '(!has(self.type) || self.type == \'Exact\') && has(self.service) ? self.service.matches(r"""^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$"""): true',
    rule(
      (self) => !(grpcExact(self) && has(self, 'service')) || GRPC_SERVICE.test(str(get(self, 'service'))),
      (self) => `found ${JSON.stringify(get(self, 'service'))}; a gRPC service name is such as "helloworld.Greeter"`,
      'service',
    ),
  ],
  [
    '(!has(self.type) || self.type == \'Exact\') && has(self.method) ? self.method.matches(r"""^[A-Za-z_][A-Za-z_0-9]*$"""): true',
    rule(
      (self) => !(grpcExact(self) && has(self, 'method')) || GRPC_METHOD.test(str(get(self, 'method'))),
      (self) => `found ${JSON.stringify(get(self, 'method'))}; a gRPC method name is such as "SayHello"`,
      'method',
    ),
  ],
];
