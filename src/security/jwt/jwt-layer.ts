import type { JWTPayload, JWTVerifyGetKey } from 'jose';
import type { InboundLayer, InboundReply, LayerOutcome } from '../inbound/inbound-layer.js';
import type { InboundReporter } from '../inbound/inbound-reporter.js';
import { sourceOf } from '../inbound/inbound-reporter.js';
import type { InboundRequest } from '../inbound/inbound-request.js';
import { JwtAuthenticationError } from '../authz/errors.js';
import type { JoseModule } from './jose-loader.js';
import type { JwksCache } from './jwks-cache.js';
import type { CompiledJwtRule, CompiledRequestAuthentication, TokenLocation } from './compiled-jwt-rules.js';

/** Envoy's default `clock_skew_seconds`. */
const CLOCK_SKEW_S = 60;

export interface JwtLayerDeps {
  readonly jose: () => Promise<JoseModule>;
  /** The shared key cache of a `jwksUri` (kept across configuration changes). */
  readonly jwks: (jose: JoseModule, uri: string) => JwksCache;
  readonly reporter: InboundReporter;
  /** Wall-clock milliseconds (token expiry is wall-clock time). */
  readonly wallClock: () => number;
}

interface FoundToken {
  readonly token: string;
  readonly location: TokenLocation;
}

function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function extract(request: InboundRequest, locations: readonly TokenLocation[]): FoundToken | undefined {
  let params: URLSearchParams | undefined;
  for (const location of locations) {
    let value: string | undefined;
    if (location.kind === 'header') {
      const header = request.header(location.name);
      if (header !== undefined && header.startsWith(location.prefix)) value = header.slice(location.prefix.length).trim();
    } else if (location.kind === 'param') {
      if (request.query !== '') value = (params ??= new URLSearchParams(request.query)).get(location.name) ?? undefined;
    } else {
      value = cookie(request.header('cookie'), location.name);
    }
    if (value) return { token: value, location };
  }
  return undefined;
}

const sameLocation = (a: TokenLocation, b: TokenLocation): boolean => a.kind === b.kind && a.name === b.name;

/**
 * RequestAuthentication on the inbound path, as Envoy's jwt_authn filter runs Istio's rules: no
 * token passes (without an identity); a token is verified against the rule of its issuer (keys
 * from `jwks` or `jwksUri`, `audiences`, expiry with Envoy's 60 s skew) and a bad one is answered
 * 401 with Envoy's words. A verified token gives the request principal `iss/sub` and its claims;
 * it is removed from its header unless `forwardOriginalToken`; `outputPayloadToHeader` and
 * `outputClaimToHeaders` are set (and never taken from the caller).
 */
export class JwtLayer implements InboundLayer {
  readonly name = 'request-authentication';
  private readonly inline = new WeakMap<CompiledJwtRule, JWTVerifyGetKey>();
  private readonly outputHeaders: readonly string[];

  constructor(
    private readonly compiled: CompiledRequestAuthentication,
    private readonly deps: JwtLayerDeps,
  ) {
    const names = new Set<string>();
    for (const rule of compiled.rules) {
      if (rule.outputPayloadToHeader) names.add(rule.outputPayloadToHeader);
      for (const c of rule.outputClaimToHeaders) names.add(c.header);
    }
    this.outputHeaders = [...names];
  }

  handle(request: InboundRequest): LayerOutcome {
    for (const name of this.outputHeaders) if (request.headers[name] !== undefined) request.setHeader(name, undefined);
    const found = extract(request, this.compiled.locations);
    if (!found) return undefined;
    return this.verify(request, found);
  }

  private async verify(request: InboundRequest, found: FoundToken): Promise<InboundReply | undefined> {
    const jose = await this.deps.jose();
    let issuer: string | undefined;
    try {
      const claims = jose.decodeJwt(found.token);
      issuer = typeof claims.iss === 'string' ? claims.iss : undefined;
    } catch (error) {
      return this.refuse(request, 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections', undefined, error);
    }
    const candidates = this.compiled.rules.filter((r) => r.locations.some((l) => sameLocation(l, found.location)));
    const rule = candidates.find((r) => r.issuer !== '' && r.issuer === issuer) ?? candidates.find((r) => r.issuer === '');
    if (!rule) return this.refuse(request, 'Jwt issuer is not configured', issuer);
    let payload: JWTPayload;
    try {
      payload = await this.verifyWith(jose, rule, found.token);
    } catch (error) {
      return this.refuse(request, reasonOf(error), issuer, error);
    }
    request.jwt = {
      principal: `${payload.iss ?? ''}/${payload.sub ?? ''}`,
      issuer: payload.iss ?? '',
      claims: payload as Record<string, unknown>,
      spaceDelimited: rule.spaceDelimited,
    };
    if (!rule.forwardOriginalToken && found.location.kind === 'header') request.setHeader(found.location.name, undefined);
    if (rule.outputPayloadToHeader) request.setHeader(rule.outputPayloadToHeader, found.token.split('.')[1] ?? '');
    for (const { header, claim } of rule.outputClaimToHeaders) {
      const value = payload[claim];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') request.setHeader(header, String(value));
    }
    return undefined;
  }

  private async verifyWith(jose: JoseModule, rule: CompiledJwtRule, token: string): Promise<JWTPayload> {
    const options = {
      ...(rule.issuer !== '' ? { issuer: rule.issuer } : {}),
      ...(rule.audiences.length > 0 ? { audience: [...rule.audiences] } : {}),
      clockTolerance: CLOCK_SKEW_S,
      currentDate: new Date(this.deps.wallClock()),
    };
    if (rule.jwks !== undefined) {
      let keys = this.inline.get(rule);
      if (!keys) {
        keys = jose.createLocalJWKSet(JSON.parse(rule.jwks) as Parameters<JoseModule['createLocalJWKSet']>[0]);
        this.inline.set(rule, keys);
      }
      return (await jose.jwtVerify(token, keys, options)).payload;
    }
    if (rule.jwksUri === undefined) throw Object.assign(new Error('the rule has neither jwks nor jwksUri'), { code: 'ERR_JWKS_MISSING' });
    const cache = this.deps.jwks(jose, rule.jwksUri);
    let keys: JWTVerifyGetKey;
    try {
      keys = await cache.keySet(rule.timeoutMs);
    } catch (error) {
      throw Object.assign(new Error(`Jwks remote fetch is failed: ${(error as Error).message}`, { cause: error }), { code: 'ERR_JWKS_FETCH' });
    }
    try {
      return (await jose.jwtVerify(token, keys, options)).payload;
    } catch (error) {
      // A key id the set lacks: the provider may have rotated its signing key.
      if ((error as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !(await cache.refreshForUnknownKey(rule.timeoutMs))) throw error;
      return (await jose.jwtVerify(token, await cache.keySet(rule.timeoutMs), options)).payload;
    }
  }

  private refuse(request: InboundRequest, reason: string, issuer: string | undefined, cause?: unknown): InboundReply {
    this.deps.reporter.denied(
      new JwtAuthenticationError(reason, issuer, request.method, request.path, sourceOf(request), cause === undefined ? undefined : { cause }),
    );
    return {
      status: 401,
      headers: {
        'content-type': 'text/plain',
        'www-authenticate': `Bearer realm="${request.secure ? 'https' : 'http'}://${request.host}${request.path}", error="invalid_token"`,
      },
      body: reason,
      reason: 'jwt',
      flags: 0,
    };
  }
}

/** Envoy's jwt_authn status message for a verification failure. */
function reasonOf(error: unknown): string {
  const e = error as { code?: string; claim?: string; message?: string };
  switch (e.code) {
    case 'ERR_JWT_EXPIRED':
      return 'Jwt is expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (e.claim === 'nbf') return 'Jwt not yet valid';
      if (e.claim === 'aud') return 'Audiences in Jwt are not allowed';
      if (e.claim === 'iss') return 'Jwt issuer is not configured';
      return 'Jwt verification fails';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return "Jwks doesn't have key to match kid or alg from Jwt";
    case 'ERR_JWKS_FETCH':
      return 'Jwks remote fetch is failed';
    case 'ERR_JWT_INVALID':
    case 'ERR_JWS_INVALID':
      return 'Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections';
    default:
      return 'Jwt verification fails';
  }
}
