import type { CompileContext } from '../context.js';
import { sortByAge } from '../context.js';
import type { MeshResource } from '../../resource.js';
import { resourceRef } from '../../resource.js';
import type { RequestAuthenticationSpec } from '../../schema/index.js';
import { parseDuration } from '../../../duration.js';
import { labelsMatch } from '../../../discovery/endpoint.js';
import type { CompiledJwtRule, CompiledRequestAuthentication, TokenLocation } from '../../../security/jwt/compiled-jwt-rules.js';
import { NO_REQUEST_AUTHENTICATION } from '../../../security/jwt/compiled-jwt-rules.js';

type RequestAuthenticationResource = MeshResource<'RequestAuthentication', RequestAuthenticationSpec>;

/** Envoy's defaults when a rule names no location: `Authorization: Bearer <token>` and `?access_token=`. */
const DEFAULT_LOCATIONS: readonly TokenLocation[] = [
  { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
  { kind: 'param', name: 'access_token' },
];

/** Claims Envoy always reads as space-separated lists. */
const SPACE_DELIMITED = ['scope', 'permission'];

function applies(resource: RequestAuthenticationResource, ctx: CompileContext): boolean {
  const ns = resource.metadata.namespace;
  if (ns !== ctx.rootNamespace && ns !== ctx.namespace) return false;
  if (resource.spec.targetRef || (resource.spec.targetRefs?.length ?? 0) > 0) return false;
  return labelsMatch(resource.spec.selector?.matchLabels ?? {}, ctx.workloadLabels);
}

/** The JWT rules of every RequestAuthentication that applies to this workload (Istio merges them all). */
export function compileRequestAuthentication(resources: readonly MeshResource[], ctx: CompileContext): CompiledRequestAuthentication {
  const list = sortByAge(resources.filter((r): r is RequestAuthenticationResource => r.kind === 'RequestAuthentication')).filter((r) => applies(r, ctx));
  const rules: CompiledJwtRule[] = [];
  for (const resource of list) {
    for (const rule of resource.spec.jwtRules ?? []) {
      const locations: TokenLocation[] = [
        ...(rule.fromHeaders ?? []).map((h): TokenLocation => ({ kind: 'header', name: h.name.toLowerCase(), prefix: h.prefix ?? '' })),
        ...(rule.fromParams ?? []).map((name): TokenLocation => ({ kind: 'param', name })),
        ...(rule.fromCookies ?? []).map((name): TokenLocation => ({ kind: 'cookie', name })),
      ];
      rules.push({
        ref: resourceRef(resource),
        issuer: rule.issuer ?? '',
        audiences: rule.audiences ?? [],
        jwksUri: rule.jwksUri ?? rule.jwks_uri,
        jwks: rule.jwks,
        locations: locations.length > 0 ? locations : DEFAULT_LOCATIONS,
        forwardOriginalToken: rule.forwardOriginalToken === true,
        outputPayloadToHeader: rule.outputPayloadToHeader?.toLowerCase(),
        outputClaimToHeaders: (rule.outputClaimToHeaders ?? []).map((c) => ({ header: c.header.toLowerCase(), claim: c.claim })),
        spaceDelimited: new Set([...SPACE_DELIMITED, ...(rule.spaceDelimitedClaims ?? [])]),
        timeoutMs: rule.timeout !== undefined ? (parseDuration(rule.timeout) ?? 5000) : 5000,
      });
    }
  }
  if (rules.length === 0) return NO_REQUEST_AUTHENTICATION;
  const seen = new Set<string>();
  const locations: TokenLocation[] = [];
  for (const rule of rules) {
    for (const l of rule.locations) {
      const key = `${l.kind}:${l.name}:${l.kind === 'header' ? l.prefix : ''}`;
      if (!seen.has(key)) {
        seen.add(key);
        locations.push(l);
      }
    }
  }
  return { rules, locations, empty: false };
}
