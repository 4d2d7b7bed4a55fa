import type { InboundLayer, InboundReply, LayerOutcome } from '../inbound/inbound-layer.js';
import type { InboundReporter } from '../inbound/inbound-reporter.js';
import { sourceOf } from '../inbound/inbound-reporter.js';
import type { InboundRequest } from '../inbound/inbound-request.js';
import { ResponseFlag } from '../../telemetry/response-flags.js';
import type { CompiledAuthorization, CompiledPolicy } from './compiled-authorization.js';
import type { CustomAuthorizer, CustomVerdict } from './custom-authorizer.js';
import { AccessDeniedError } from './errors.js';

/** Envoy's RBAC filter answer, which Istio users see. */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

function matches(policy: CompiledPolicy, request: InboundRequest): boolean {
  const rules = policy.rules;
  for (let i = 0; i < rules.length; i++) if (rules[i]!.matches(request)) return true;
  return false;
}

/**
 * AuthorizationPolicy on the inbound path, in Istio's order: CUSTOM (the providers of the
 * matching policies are asked), then AUDIT (reported), then DENY (any match denies), then ALLOW
 * (with ALLOW policies, a request none of them matches is denied). Dry-run policies are
 * evaluated and reported, never enforced.
 */
export class AuthorizationLayer implements InboundLayer {
  readonly name = 'authorization';
  private readonly enforcedCustom: readonly CompiledPolicy[];
  private readonly enforcedDeny: readonly CompiledPolicy[];
  private readonly enforcedAllow: readonly CompiledPolicy[];
  private readonly dryRunDeny: readonly CompiledPolicy[];
  private readonly dryRunAllow: readonly CompiledPolicy[];

  constructor(
    private readonly compiled: CompiledAuthorization,
    /** Provider by name; undefined for a provider that cannot be used (denies, failing closed). */
    private readonly providers: (name: string) => CustomAuthorizer | undefined,
    private readonly reporter: InboundReporter,
  ) {
    this.enforcedCustom = compiled.custom.filter((p) => !p.dryRun);
    this.enforcedDeny = compiled.deny.filter((p) => !p.dryRun);
    this.enforcedAllow = compiled.allow.filter((p) => !p.dryRun);
    this.dryRunDeny = compiled.deny.filter((p) => p.dryRun);
    this.dryRunAllow = compiled.allow.filter((p) => p.dryRun);
  }

  handle(request: InboundRequest): LayerOutcome {
    if (this.enforcedCustom.length > 0) {
      const asked: string[] = [];
      for (const policy of this.enforcedCustom) {
        if (policy.provider !== undefined && !asked.includes(policy.provider) && matches(policy, request)) asked.push(policy.provider);
      }
      if (asked.length > 0) return this.custom(request, asked, 0);
    }
    return this.rbac(request);
  }

  private custom(request: InboundRequest, providers: readonly string[], index: number): LayerOutcome {
    for (let i = index; i < providers.length; i++) {
      const name = providers[i]!;
      const authorizer = this.providers(name);
      if (!authorizer) return this.denyCustom(request, name, { allow: false });
      let verdict: CustomVerdict | Promise<CustomVerdict>;
      try {
        verdict = authorizer.check(request);
      } catch {
        return this.denyCustom(request, name, { allow: false });
      }
      if (verdict instanceof Promise) {
        return verdict.then(
          (v) => (v.allow ? (this.allowed(request, v), this.custom(request, providers, i + 1)) : this.denyCustom(request, name, v)),
          () => this.denyCustom(request, name, { allow: false }),
        );
      }
      if (!verdict.allow) return this.denyCustom(request, name, verdict);
      this.allowed(request, verdict);
    }
    return this.rbac(request);
  }

  private allowed(request: InboundRequest, verdict: Extract<CustomVerdict, { allow: true }>): void {
    for (const [name, value] of Object.entries(verdict.requestHeaders ?? {})) request.setHeader(name.toLowerCase(), value);
    if (verdict.responseHeaders && Object.keys(verdict.responseHeaders).length > 0)
      request.responseHeaders = { ...request.responseHeaders, ...verdict.responseHeaders };
  }

  private denyCustom(request: InboundRequest, provider: string, verdict: Extract<CustomVerdict, { allow: false }>): InboundReply {
    const policy = this.enforcedCustom.find((p) => p.provider === provider && matches(p, request));
    this.reporter.denied(
      new AccessDeniedError(
        policy?.name,
        'CUSTOM',
        request.method,
        request.path,
        sourceOf(request),
        `${request.method} ${request.path} from ${sourceOf(request)} denied by extension provider "${provider}" (CUSTOM policy ${policy?.name ?? ''})`,
      ),
    );
    return {
      status: verdict.status ?? 403,
      headers: { 'content-type': 'text/plain', ...verdict.headers },
      body: verdict.body ?? '',
      reason: 'ext_authz',
      flags: ResponseFlag.UAEX,
      decidedBy: policy?.name,
    };
  }

  private rbac(request: InboundRequest): InboundReply | undefined {
    const c = this.compiled;
    for (const policy of c.audit) {
      if (matches(policy, request))
        this.reporter.audit({ kind: 'audit', policy: policy.name, result: 'matched', method: request.method, path: request.path, source: sourceOf(request) });
    }
    for (const policy of this.dryRunDeny) {
      this.reporter.audit({
        kind: 'dry-run',
        policy: policy.name,
        result: matches(policy, request) ? 'denied' : 'allowed',
        method: request.method,
        path: request.path,
        source: sourceOf(request),
      });
    }
    const deny = this.enforcedDeny;
    for (let i = 0; i < deny.length; i++) {
      if (matches(deny[i]!, request)) return this.deny(request, deny[i]!, 'DENY');
    }
    if (this.dryRunAllow.length > 0) {
      const allowed = this.dryRunAllow.some((p) => matches(p, request));
      for (const policy of this.dryRunAllow) {
        this.reporter.audit({
          kind: 'dry-run',
          policy: policy.name,
          result: allowed ? 'allowed' : 'denied',
          method: request.method,
          path: request.path,
          source: sourceOf(request),
        });
      }
    }
    const allow = this.enforcedAllow;
    if (allow.length === 0) return undefined;
    for (let i = 0; i < allow.length; i++) if (matches(allow[i]!, request)) return undefined;
    return this.deny(request, undefined, 'ALLOW');
  }

  private deny(request: InboundRequest, policy: CompiledPolicy | undefined, action: 'DENY' | 'ALLOW'): InboundReply {
    const source = sourceOf(request);
    const why = policy ? `DENY policy ${policy.name} matched` : 'no ALLOW policy matched';
    this.reporter.denied(
      new AccessDeniedError(policy?.name, action, request.method, request.path, source, `${request.method} ${request.path} from ${source} denied: ${why}`),
    );
    return {
      status: 403,
      headers: { 'content-type': 'text/plain' },
      body: RBAC_DENIED_BODY,
      reason: 'rbac',
      flags: 0,
      ...(policy ? { decidedBy: policy.name } : {}),
    };
  }
}
