import type { FieldPath } from '../../document.js';
import type {
  AuthorizationPolicySpec,
  Operation,
  PeerAuthenticationSpec,
  PolicyTargetReference,
  RequestAuthenticationSpec,
  Source,
} from '../../schema/index.js';
import { checkSelectorLabels } from './common-rules.js';
import { isCidr, isIpAddress } from './names.js';
import type { RuleReport, RuleSubject } from './rule-report.js';
import { q } from './rule-report.js';

const NO_LABELS = 'workload selector specified without labels';

/** istiod's ValidatePeerAuthentication (the port range and selector rules are the CRD's). */
export function checkPeerAuthentication(spec: PeerAuthenticationSpec, _subject: RuleSubject, report: RuleReport): void {
  if (spec.portLevelMtls && Object.keys(spec.portLevelMtls).length === 0) {
    report.error(['spec', 'portLevelMtls'], 'port level mTLS, if defined, must have at least one element');
  }
  if (spec.selector) checkSelectorLabels(spec.selector.matchLabels, ['spec', 'selector', 'matchLabels'], report, NO_LABELS);
}

const ALLOWED_TARGETS = [
  { group: 'core', kind: 'Service' },
  { group: 'networking.istio.io', kind: 'ServiceEntry' },
  { group: 'gateway.networking.k8s.io', kind: 'Gateway' },
  { group: 'gateway.networking.k8s.io', kind: 'GatewayClass' },
];

function checkTargetRef(ref: PolicyTargetReference, path: FieldPath, report: RuleReport): void {
  if (!ref.name) report.error([...path, 'name'], 'targetRef name must be set');
  if (ref.namespace) report.error([...path, 'namespace'], 'targetRef namespace must not be set; cross namespace referencing is not supported');
  const group = ref.group || 'core';
  if (!ALLOWED_TARGETS.some((t) => t.group === group && t.kind === ref.kind)) {
    report.error(path, `targetRef must be to one of ${ALLOWED_TARGETS.map((t) => `${t.group}/${t.kind}`).join(', ')} but was ${ref.group ?? ''}/${ref.kind}`);
  }
}

const SOURCE_LISTS = [
  'principals',
  'requestPrincipals',
  'namespaces',
  'ipBlocks',
  'remoteIpBlocks',
  'notPrincipals',
  'notRequestPrincipals',
  'notNamespaces',
  'notIpBlocks',
  'notRemoteIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
  'trustDomains',
  'notTrustDomains',
] as const;
const OPERATION_LISTS = ['ports', 'methods', 'paths', 'hosts', 'notPorts', 'notMethods', 'notPaths', 'notHosts'] as const;
const TCP_SOURCE_LISTS = [
  'principals',
  'notPrincipals',
  'ipBlocks',
  'notIpBlocks',
  'namespaces',
  'notNamespaces',
  'remoteIpBlocks',
  'notRemoteIpBlocks',
  'serviceAccounts',
  'notServiceAccounts',
] as const;
const CUSTOM_UNSUPPORTED_SOURCES: readonly [keyof Source, string][] = [
  ['namespaces', 'From.Namespaces'],
  ['notNamespaces', 'From.NotNamespaces'],
  ['serviceAccounts', 'From.ServiceAccounts'],
  ['notServiceAccounts', 'From.NotServiceAccounts'],
  ['trustDomains', 'From.TrustDomains'],
  ['notTrustDomains', 'From.NotTrustDomains'],
  ['principals', 'From.Principals'],
  ['notPrincipals', 'From.NotPrincipals'],
  ['requestPrincipals', 'From.RequestPrincipals'],
  ['notRequestPrincipals', 'From.NotRequestPrincipals'],
];
const NEVER_TRIGGERED = 'add an empty rule `{}` if you want it be triggered for every request';

const present = (list: readonly unknown[] | undefined): boolean => (list?.length ?? 0) > 0;

/** istiod's ValidateAuthorizationPolicy. */
export function checkAuthorizationPolicy(spec: AuthorizationPolicySpec, _subject: RuleSubject, report: RuleReport): void {
  const action = spec.action ?? 'ALLOW';
  if (spec.selector) checkSelectorLabels(spec.selector.matchLabels, ['spec', 'selector', 'matchLabels'], report, NO_LABELS);
  if (spec.targetRef) checkTargetRef(spec.targetRef, ['spec', 'targetRef'], report);
  spec.targetRefs?.forEach((ref, i) => checkTargetRef(ref, ['spec', 'targetRefs', i], report));
  const rules = spec.rules ?? [];
  if (action === 'CUSTOM') {
    if (rules.length === 0) report.error(['spec'], `CUSTOM action without \`rules\` is meaningless as it will never be triggered, ${NEVER_TRIGGERED}`);
    else if (!spec.provider?.name) report.error(['spec', 'provider'], '`provider.name` must not be empty');
    rules.forEach((rule, r) => {
      rule.from?.forEach((from, f) => {
        for (const [field, name] of CUSTOM_UNSUPPORTED_SOURCES) {
          if (present(from.source?.[field]))
            report.error(['spec', 'rules', r, 'from', f, 'source', field], `${name} is currently not supported with CUSTOM action`);
        }
      });
      rule.when?.forEach((when, w) => {
        if (
          ['source.namespace', 'source.serviceAccount', 'source.trustDomain', 'source.principal'].includes(when.key) ||
          when.key.startsWith('request.auth.')
        ) {
          report.error(['spec', 'rules', r, 'when', w, 'key'], `${when.key} is currently not supported with CUSTOM action`);
        }
      });
    });
  }
  if (spec.provider && action !== 'CUSTOM') report.error(['spec', 'provider'], `\`provider\` must not be with non CUSTOM action, found ${action}`);
  if (action === 'DENY' && rules.length === 0)
    report.error(['spec'], `DENY action without \`rules\` is meaningless as it will never be triggered, ${NEVER_TRIGGERED}`);
  rules.forEach((rule, r) => {
    const path = ['spec', 'rules', r];
    let fromExists = false;
    let toExists = false;
    let tcpInFrom = false;
    let tcpInTo = false;
    rule.from?.forEach((from, f) => {
      const source = from.source;
      if (!source) {
        report.error([...path, 'from', f], `\`from.source\` must not be nil, found at rule ${r}`);
        return;
      }
      fromExists = true;
      checkSource(source, [...path, 'from', f, 'source'], r, report);
      if (TCP_SOURCE_LISTS.some((field) => source[field] !== undefined)) tcpInFrom = true;
    });
    rule.to?.forEach((to, t) => {
      const operation = to.operation;
      if (!operation) {
        report.error([...path, 'to', t], `\`to.operation\` must not be nil, found at rule ${r}`);
        return;
      }
      toExists = true;
      checkOperation(operation, [...path, 'to', t, 'operation'], r, report);
      if (operation.ports !== undefined || operation.notPorts !== undefined) tcpInTo = true;
    });
    rule.when?.forEach((condition, w) => {
      const at = [...path, 'when', w];
      if (condition.key === '') {
        report.error([...at, 'key'], '`key` must not be empty');
        return;
      }
      if (!present(condition.values) && !present(condition.notValues)) {
        report.error(at, `at least one of \`values\` or \`notValues\` must be set for key ${condition.key}`);
        return;
      }
      const badValue = attributeProblem(condition.key, condition.values ?? []);
      if (badValue) report.error([...at, 'values'], `invalid \`value\` for \`key\` ${condition.key}: ${badValue}`);
      const badNotValue = attributeProblem(condition.key, condition.notValues ?? []);
      if (badNotValue) report.error([...at, 'notValues'], `invalid \`notValue\` for \`key\` ${condition.key}: ${badNotValue}`);
    });
    if (action === 'DENY' && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
      report.warn(
        path,
        'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP attributes in a DENY rule; it is recommended to explicitly specify the port',
      );
    }
  });
}

function checkSource(source: Source, path: FieldPath, rule: number, report: RuleReport): void {
  if (!SOURCE_LISTS.some((field) => present(source[field]))) report.error(path, `\`from.source\` must not be empty, found at rule ${rule}`);
  for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) {
    for (const bad of ipProblems(source[field] ?? [])) report.error([...path, field], bad);
  }
  for (const field of SOURCE_LISTS) {
    const values = source[field] ?? [];
    const name = field[0]!.toUpperCase() + field.slice(1);
    const bad =
      field === 'serviceAccounts' || field === 'notServiceAccounts'
        ? serviceAccountProblem(name, values)
        : field === 'trustDomains' || field === 'notTrustDomains'
          ? trustDomainProblem(name, values)
          : emptyValueProblem(name, values);
    if (bad) report.error([...path, field], bad);
  }
}

function checkOperation(operation: Operation, path: FieldPath, rule: number, report: RuleReport): void {
  if (!OPERATION_LISTS.some((field) => present(operation[field]))) report.error(path, `\`to.operation\` must not be empty, found at rule ${rule}`);
  for (const field of ['ports', 'notPorts'] as const) {
    for (const bad of portProblems(operation[field] ?? [])) report.error([...path, field], bad);
  }
  for (const field of OPERATION_LISTS) {
    const bad = emptyValueProblem(field[0]!.toUpperCase() + field.slice(1), operation[field] ?? []);
    if (bad) report.error([...path, field], bad);
  }
  for (const field of ['paths', 'notPaths'] as const) {
    const bad = pathTemplateProblem(field === 'paths' ? 'Paths' : 'NotPaths', operation[field] ?? []);
    if (bad) report.error([...path, field], bad);
  }
}

function emptyValueProblem(key: string, values: readonly string[]): string | undefined {
  return values.includes('') ? `empty value not allowed, found in ${key}` : undefined;
}

function wildcardProblem(key: string, values: readonly string[]): string | undefined {
  const empty = emptyValueProblem(key, values);
  if (empty) return empty;
  for (const value of values) {
    const stars = value.split('*').length - 1;
    if (stars > 1) return `at most one wildcard is allowed, found in ${key}: ${q(value)}`;
    if (stars === 1 && value !== '*' && !value.startsWith('*') && !value.endsWith('*'))
      return `wildcard is only allowed at the start or end, found in ${key}: ${q(value)}`;
  }
  return undefined;
}

function trustDomainProblem(key: string, values: readonly string[]): string | undefined {
  const bad = wildcardProblem(key, values);
  if (bad) return bad;
  const slash = values.find((v) => v.includes('/'));
  return slash === undefined ? undefined : `trust domain must not contain '/', found in ${key}: ${q(slash)}`;
}

function serviceAccountProblem(key: string, values: readonly string[]): string | undefined {
  if (values.length > 16) return 'may not have more than 16 values';
  const format = "expected format 'serviceAccount' or 'namespace/serviceAccount'";
  for (const value of values) {
    if (value === '') return `empty value not allowed, found in ${key}`;
    if (value.includes('*')) return `wildcard not allowed, found in ${key}`;
    const slashes = value.split('/').length - 1;
    if (slashes > 1) return `${format}, found ${q(value)} in ${key}`;
    if (value.length > 320) return `value cannot exceed 320 characters, found ${q(value)} in ${key}`;
    if (slashes === 1) {
      const [ns, sa] = value.split('/');
      if (ns === '') return `${format}, found empty namespace ${q(value)} in ${key}`;
      if (sa === '') return `${format}, found empty serviceAccount ${q(value)} in ${key}`;
    }
  }
  return undefined;
}

function ipProblems(values: readonly string[]): string[] {
  return values.flatMap((v) => {
    if (v.includes('/')) return isCidr(v) ? [] : [`bad CIDR range (${v}): netip.ParsePrefix(${q(v)}): invalid prefix`];
    return isIpAddress(v) ? [] : [`bad IP address (${v})`];
  });
}

function portProblems(values: readonly string[]): string[] {
  return values.flatMap((port) => (/^\d+$/.test(port) && Number(port) <= 65535 ? [] : [`bad port (${port})`]));
}

const VALID_LITERAL = /^[a-zA-Z0-9-._~%!$&'()+,;:@=]+$/;

function pathTemplateProblem(key: string, paths: readonly string[]): string | undefined {
  for (const raw of paths) {
    const template = raw.includes('{*}') || raw.includes('{**}');
    const path = raw.replace(/^\/+|\/+$/g, '');
    let matchAny = false;
    for (const glob of path.split('/')) {
      if (glob === '{*}' && !matchAny) continue;
      if (glob === '{**}' && !matchAny) {
        matchAny = true;
        continue;
      }
      if (glob === '{*}' || glob === '{**}') return `invalid or unsupported path ${path}, found in ${key}. {**} is not the last operator`;
      if (/[{}]/.test(glob)) return `invalid or unsupported path ${path}, found in ${key}. Contains '{' or '}' beyond a supported path template`;
      if (template && !VALID_LITERAL.test(glob))
        return `invalid or unsupported path ${path}, found in ${key}. Contains segment ${glob} with invalid string literal`;
    }
  }
  return undefined;
}

/** security.ValidateAttribute for a `when` condition. */
function attributeProblem(key: string, values: readonly string[]): string | undefined {
  const empty = emptyValueProblem(key, values);
  if (empty) return empty;
  const mapKey = (): string | undefined => {
    const open = key.indexOf('[');
    return key.endsWith(']') && open > 0 && open < key.length - 2 ? undefined : `bad key (${key}): should have format a[b]`;
  };
  if (key.startsWith('request.headers')) return mapKey();
  if (key === 'source.ip' || key === 'remote.ip' || key === 'destination.ip') return ipProblems(values)[0];
  if (key === 'source.serviceAccount') return serviceAccountProblem(key, values);
  if (key === 'source.trustDomain') return wildcardProblem(key, values);
  if (key.startsWith('request.auth.claims') || key.startsWith('experimental.envoy.filters.')) return mapKey();
  if (key === 'destination.port') return portProblems(values)[0];
  if (['source.namespace', 'source.principal', 'request.auth.principal', 'request.auth.audiences', 'request.auth.presenter', 'connection.sni'].includes(key))
    return undefined;
  if (key === 'destination.namespace') return `attribute ${key} is replaced by the metadata.namespace`;
  if (key.startsWith('destination.labels')) return `attribute ${key} is replaced by the workload selector`;
  if (key === 'destination.name' || key === 'destination.user') return `deprecated attribute ${key}: only supported in v1alpha1`;
  return `unknown attribute: ${key}`;
}

const STRICT_HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;

/** istiod's ValidateRequestAuthentication (validateJwtRule for each rule). */
export function checkRequestAuthentication(spec: RequestAuthenticationSpec, _subject: RuleSubject, report: RuleReport): void {
  if (spec.selector) checkSelectorLabels(spec.selector.matchLabels, ['spec', 'selector', 'matchLabels'], report, NO_LABELS);
  if (spec.targetRef) checkTargetRef(spec.targetRef, ['spec', 'targetRef'], report);
  spec.targetRefs?.forEach((ref, i) => checkTargetRef(ref, ['spec', 'targetRefs', i], report));
  const targeted = (spec.targetRef ? 1 : 0) + ((spec.targetRefs?.length ?? 0) > 0 ? 1 : 0) + (spec.selector ? 1 : 0);
  if (targeted > 1) report.error(['spec'], 'only one of targetRefs or workloadSelector can be set');
  spec.jwtRules?.forEach((rule, r) => {
    const path: FieldPath = ['spec', 'jwtRules', r];
    rule.audiences?.forEach((audience, a) => {
      if (audience === '') report.error([...path, 'audiences', a], 'audience must be non-empty string');
    });
    const jwksUri = rule.jwksUri ?? rule.jwks_uri;
    if (!rule.issuer && !jwksUri) report.error([...path, 'issuer'], 'issuer or jwksUri must be non-empty string');
    if (jwksUri !== undefined) {
      let url: URL | undefined;
      try {
        url = new URL(jwksUri);
      } catch {
        url = undefined;
      }
      if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
        report.error(
          [...path, rule.jwksUri !== undefined ? 'jwksUri' : 'jwks_uri'],
          `invalid jwks uri ${q(jwksUri)}: expected an http:// or https:// URL with a host`,
        );
      }
    }
    if (rule.jwks !== undefined) {
      const problem = jwksProblem(rule.jwks);
      if (problem) report.error([...path, 'jwks'], `jwks parse error: ${problem}`);
    }
    rule.fromHeaders?.forEach((header, h) => {
      if (!header.name) report.error([...path, 'fromHeaders', h, 'name'], 'location header name must be non-empty string');
    });
    rule.fromParams?.forEach((param, p) => {
      if (param === '') report.error([...path, 'fromParams', p], 'location query must be non-empty string');
    });
    rule.fromCookies?.forEach((cookie, c) => {
      if (cookie === '') report.error([...path, 'fromCookies', c], 'cookie name must be non-empty string');
    });
    rule.outputClaimToHeaders?.forEach((item, i) => {
      if (!item.claim || !item.header) {
        report.error([...path, 'outputClaimToHeaders', i], 'outputClaimToHeaders header and claim value must be non-empty string');
      } else if (!STRICT_HEADER_NAME.test(item.header)) {
        report.error([...path, 'outputClaimToHeaders', i, 'header'], `invalid header name ${q(item.header)}`);
      }
    });
  });
}

/** Why an inline JWKS cannot be read: not JSON, or not `{"keys": [objects with kty]}`. */
function jwksProblem(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return `not JSON (${(error as Error).message})`;
  }
  const keys = (parsed as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys)) return 'expected an object with a "keys" array';
  const bad = keys.findIndex((k: unknown) => typeof k !== 'object' || k === null || typeof (k as { kty?: unknown }).kty !== 'string');
  return bad >= 0 ? `keys[${bad}] is not a JSON Web Key (no "kty")` : undefined;
}
