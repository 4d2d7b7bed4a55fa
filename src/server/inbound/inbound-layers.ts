import type { Snapshot } from '../../config/snapshot.js';
import type { RateLimiting } from '../../resilience/rate-limit/rate-limiting.js';
import { AuthorizationLayer } from '../../security/authz/authz-layer.js';
import type { CustomAuthorizer } from '../../security/authz/custom-authorizer.js';
import type { JwtLayerDeps } from '../../security/jwt/jwt-layer.js';
import { JwtLayer } from '../../security/jwt/jwt-layer.js';
import type { InboundLayer } from '../../security/inbound/inbound-layer.js';
import type { InboundReporter } from '../../security/inbound/inbound-reporter.js';
import { InboundRateLimitLayer } from './rate-limit-layer.js';

export interface InboundLayerDeps {
  readonly rateLimits: RateLimiting;
  readonly jwt: JwtLayerDeps;
  readonly providers: (name: string) => CustomAuthorizer | undefined;
  readonly reporter: InboundReporter;
}

/**
 * The inbound layers a snapshot calls for, in the order a sidecar's filter chain runs them:
 * RequestAuthentication (jwt_authn), AuthorizationPolicy (ext_authz for CUSTOM, then RBAC),
 * the local rate limit. A snapshot without any of them has no layer at all.
 */
export function buildInboundLayers(snapshot: Snapshot, deps: InboundLayerDeps): InboundLayer[] {
  const layers: InboundLayer[] = [];
  if (!snapshot.requestAuthentication.empty) layers.push(new JwtLayer(snapshot.requestAuthentication, deps.jwt));
  if (!snapshot.authorization.empty) layers.push(new AuthorizationLayer(snapshot.authorization, deps.providers, deps.reporter));
  if (snapshot.rateLimits.inboundRules.length > 0) layers.push(new InboundRateLimitLayer(deps.rateLimits, snapshot.rateLimits));
  return layers;
}
