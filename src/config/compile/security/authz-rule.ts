import type { AuthorizationRule, Source } from '../../schema/index.js';
import type { InboundRequest, VerifiedJwt } from '../../../security/inbound/inbound-request.js';
import type { Predicate } from '../../../security/authz/compiled-rule.js';
import { CompiledRule } from '../../../security/authz/compiled-rule.js';
import { IpBlocks } from '../../../security/authz/ip-block.js';
import { isPathTemplate, pathTemplate } from '../../../security/authz/path-template.js';
import type { ValueMatcher } from '../../../security/authz/value-match.js';
import {
  anyOf,
  headerValue,
  namespaceValue,
  requestPrincipalValue,
  serviceAccountValue,
  stringValue,
  trustDomainValue,
} from '../../../security/authz/value-match.js';

/** Where a rule's compilation found something it cannot do, with the field's path under the rule. */
export type RuleProblem = (path: readonly (string | number)[], message: string) => void;

/** What a rule compiles with: the policy's namespace and the trust domains (for aliases). */
export interface RuleContext {
  readonly policyNamespace: string;
  /** The mesh's trust domain and its aliases, the local one first. */
  readonly trustDomains: readonly string[];
}

type Getter = (request: InboundRequest) => string | undefined;

/** `values` (any) and `notValues` (none) of one attribute, as two predicates (either may be absent). */
function condition(
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  make: (values: readonly string[]) => Predicate,
): Predicate[] {
  const out: Predicate[] = [];
  if (values && values.length > 0) out.push(make(values));
  if (notValues && notValues.length > 0) {
    const p = make(notValues);
    out.push((r) => !p(r));
  }
  return out;
}

function attribute(get: Getter, matcherOf: (values: readonly string[]) => ValueMatcher): (values: readonly string[]) => Predicate {
  return (values) => {
    const m = matcherOf(values);
    return (r) => {
      const v = get(r);
      return v !== undefined && m.test(v);
    };
  };
}

const peerId: Getter = (r) => r.peer?.spiffeId;
const sourceIp: Getter = (r) => r.sourceIp;
const remoteIp: Getter = (r) => r.remoteIp;
const destinationIp: Getter = (r) => r.destinationIp;

function ips(values: readonly string[]): ValueMatcher {
  const blocks = new IpBlocks(values);
  return { test: (v) => blocks.has(v) };
}

function portSet(values: readonly string[]): ValueMatcher {
  const set = new Set(values.map(Number));
  return { test: (v) => set.has(Number(v)) };
}

/**
 * istiod's trust-domain migration of principal values: a principal whose trust domain is the
 * mesh's (or an alias, or `cluster.local`) stands for the same identity in each of them.
 */
function withAliases(values: readonly string[], trustDomains: readonly string[]): string[] {
  if (trustDomains.length <= 1) return [...values];
  const out: string[] = [];
  for (const value of values) {
    const slash = value.indexOf('/');
    const td = slash > 0 ? value.slice(0, slash) : '';
    if (value.startsWith('*') || slash <= 0 || !(trustDomains.includes(td) || td === 'cluster.local')) {
      out.push(value);
      continue;
    }
    for (const alias of trustDomains) out.push(`${alias}${value.slice(slash)}`);
  }
  return out;
}

function trustDomainsWithAliases(values: readonly string[], trustDomains: readonly string[]): string[] {
  if (trustDomains.length <= 1) return [...values];
  const out = new Set<string>();
  for (const v of values) {
    if (trustDomains.includes(v)) for (const td of trustDomains) out.add(td);
    else out.add(v);
  }
  return [...out];
}

function principalPredicate(values: readonly string[]): Predicate {
  return attribute(peerId, (vs) => anyOf(vs.map((v) => stringValue(v, 'spiffe://'))))(values);
}

function requestPrincipalPredicate(values: readonly string[]): Predicate {
  const tests = values.map(requestPrincipalValue);
  return (r) => {
    const jwt = r.jwt;
    if (!jwt) return false;
    const iss = typeof jwt.claims['iss'] === 'string' ? jwt.claims['iss'] : '';
    const sub = typeof jwt.claims['sub'] === 'string' ? jwt.claims['sub'] : '';
    for (const test of tests) if (test(iss, sub)) return true;
    return false;
  };
}

/** The values of a claim (nested by path) as Envoy's list matcher sees them: a string, or a list's strings. */
export function claimValues(jwt: VerifiedJwt | undefined, path: readonly string[]): string[] {
  if (!jwt) return [];
  let value: unknown = jwt.claims;
  for (const key of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return [];
    value = (value as Record<string, unknown>)[key];
  }
  if (typeof value === 'string') return path.length === 1 && jwt.spaceDelimited.has(path[0]!) ? value.split(' ').filter((s) => s !== '') : [value];
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string');
  return [];
}

function claimPredicate(path: readonly string[]): (values: readonly string[]) => Predicate {
  return (values) => {
    const m = anyOf(values.map((v) => stringValue(v)));
    return (r) => {
      for (const v of claimValues(r.jwt, path)) if (m.test(v)) return true;
      return false;
    };
  };
}

/** `[a]` or `[a][b]` after a key prefix: the names in brackets, or undefined when malformed. */
export function bracketNames(rest: string): string[] | undefined {
  if (!rest.startsWith('[') || !rest.endsWith(']')) return undefined;
  const nested = /^(\[[^[\]]+\])+$/.test(rest) ? [...rest.matchAll(/\[([^[\]]+)\]/g)].map((m) => m[1]!) : undefined;
  return nested ?? [rest.slice(1, -1)];
}

/** The principal-side and permission-side predicates of one `when` key, or a problem. */
function whenCondition(
  key: string,
  values: readonly string[] | undefined,
  notValues: readonly string[] | undefined,
  ctx: RuleContext,
): { side: 'principal' | 'permission'; predicates: Predicate[] } | string {
  const principal = (make: (values: readonly string[]) => Predicate) => ({ side: 'principal' as const, predicates: condition(values, notValues, make) });
  const permission = (make: (values: readonly string[]) => Predicate) => ({ side: 'permission' as const, predicates: condition(values, notValues, make) });
  if (key.startsWith('request.headers')) {
    const names = bracketNames(key.slice('request.headers'.length));
    if (!names || names.length !== 1) return `bad key (${key}): should have format request.headers[<name>]`;
    const name = names[0]!.toLowerCase();
    return principal((vs) => {
      const m = anyOf(vs.map((v) => headerValue(v)));
      return (r) => {
        const v = r.header(name);
        return v !== undefined && m.test(v);
      };
    });
  }
  if (key.startsWith('request.auth.claims')) {
    const names = bracketNames(key.slice('request.auth.claims'.length));
    if (!names) return `bad key (${key}): should have format request.auth.claims[<name>]`;
    return principal(claimPredicate(names));
  }
  switch (key) {
    case 'source.ip':
      return principal(attribute(sourceIp, ips));
    case 'remote.ip':
      return principal(attribute(remoteIp, ips));
    case 'source.namespace':
      return principal(attribute(peerId, (vs) => anyOf(vs.map(namespaceValue))));
    case 'source.principal':
      return principal((vs) => principalPredicate(withAliases(vs, ctx.trustDomains)));
    case 'source.serviceAccount':
      return principal(attribute(peerId, (vs) => anyOf(vs.map((v) => serviceAccountValue(v, ctx.policyNamespace)))));
    case 'source.trustDomain':
      return principal(attribute(peerId, (vs) => anyOf(trustDomainsWithAliases(vs, ctx.trustDomains).map(trustDomainValue))));
    case 'request.auth.principal':
      return principal(requestPrincipalPredicate);
    case 'request.auth.audiences':
      return principal(claimPredicate(['aud']));
    case 'request.auth.presenter':
      return principal(claimPredicate(['azp']));
    case 'destination.ip':
      return permission(attribute(destinationIp, ips));
    case 'destination.port':
      return permission(attribute((r) => String(r.port), portSet));
    case 'connection.sni':
      return permission(
        attribute(
          (r) => r.sni || undefined,
          (vs) => anyOf(vs.map((v) => stringValue(v))),
        ),
      );
    default:
      if (key.startsWith('experimental.envoy.filters.')) {
        return `${key} reads Envoy's dynamic metadata, which only an Envoy proxy produces; sidecarless cannot evaluate it, so the policy is refused rather than ignored`;
      }
      return `unknown attribute: ${key}`;
  }
}

function sourcePredicates(s: Source, ctx: RuleContext): Predicate[] {
  // The order istiod inserts them in (each to the front): principals first.
  return [
    ...condition(
      s.principals && withAliases(s.principals, ctx.trustDomains),
      s.notPrincipals && withAliases(s.notPrincipals, ctx.trustDomains),
      principalPredicate,
    ),
    ...condition(s.requestPrincipals, s.notRequestPrincipals, requestPrincipalPredicate),
    ...condition(
      s.serviceAccounts,
      s.notServiceAccounts,
      attribute(peerId, (vs) => anyOf(vs.map((v) => serviceAccountValue(v, ctx.policyNamespace)))),
    ),
    ...condition(
      s.trustDomains && trustDomainsWithAliases(s.trustDomains, ctx.trustDomains),
      s.notTrustDomains && trustDomainsWithAliases(s.notTrustDomains, ctx.trustDomains),
      attribute(peerId, (vs) => anyOf(vs.map(trustDomainValue))),
    ),
    ...condition(
      s.namespaces,
      s.notNamespaces,
      attribute(peerId, (vs) => anyOf(vs.map(namespaceValue))),
    ),
    ...condition(s.remoteIpBlocks, s.notRemoteIpBlocks, attribute(remoteIp, ips)),
    ...condition(s.ipBlocks, s.notIpBlocks, attribute(sourceIp, ips)),
  ];
}

const hostMatch = attribute(
  (r) => r.host,
  (vs) => anyOf(vs.map((v) => (v === '*' ? { test: () => true } : stringValue(v, '', true)))),
);
const methodMatch = attribute(
  (r) => r.method,
  (vs) => anyOf(vs.map((v) => headerValue(v))),
);
const pathMatch = attribute(
  (r) => r.path,
  (vs) => anyOf(vs.map((v) => (isPathTemplate(v) ? pathTemplate(v) : stringValue(v)))),
);
const portMatch = attribute((r) => String(r.port), portSet);

/**
 * Compiles one rule as istiod's authz model does (`model.New`): each `from` is a principal
 * (its source fields AND the source-side `when` conditions), each `to` a permission (its
 * operation AND the destination-side `when` conditions); no `from` (or `to`) means any.
 */
export function compileRule(rule: AuthorizationRule, ctx: RuleContext, problem: RuleProblem): CompiledRule | undefined {
  const basePrincipal: Predicate[] = [];
  const basePermission: Predicate[] = [];
  let failed = false;
  rule.when?.forEach((w, i) => {
    const c = whenCondition(w.key, w.values, w.notValues, ctx);
    if (typeof c === 'string') {
      problem(['when', i, 'key'], c);
      failed = true;
      return;
    }
    (c.side === 'principal' ? basePrincipal : basePermission).push(...c.predicates);
  });
  if (failed) return undefined;
  const principals = (rule.from ?? []).map((f) => [...(f.source ? sourcePredicates(f.source, ctx) : []), ...basePrincipal]);
  if (principals.length === 0) principals.push(basePrincipal);
  const permissions = (rule.to ?? []).map((t) => {
    const o = t.operation;
    return [
      ...(o ? condition(o.hosts, o.notHosts, hostMatch) : []),
      ...(o ? condition(o.methods, o.notMethods, methodMatch) : []),
      ...(o ? condition(o.paths, o.notPaths, pathMatch) : []),
      ...(o ? condition(o.ports, o.notPorts, portMatch) : []),
      ...basePermission,
    ];
  });
  if (permissions.length === 0) permissions.push(basePermission);
  return new CompiledRule(permissions, principals);
}
