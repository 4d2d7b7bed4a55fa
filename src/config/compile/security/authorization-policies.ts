import type { CompileContext, IssueSink } from '../context.js';
import { locate, sortByAge } from '../context.js';
import type { MeshResource } from '../../resource.js';
import { resourceRef } from '../../resource.js';
import type { AuthorizationPolicySpec } from '../../schema/index.js';
import { labelsMatch } from '../../../discovery/endpoint.js';
import type { AuthorizationAction, CompiledAuthorization, CompiledPolicy } from '../../../security/authz/compiled-authorization.js';
import { NO_AUTHORIZATION } from '../../../security/authz/compiled-authorization.js';
import type { CompiledRule } from '../../../security/authz/compiled-rule.js';
import { MATCH_NEVER } from '../../../security/authz/compiled-rule.js';
import { compileRule } from './authz-rule.js';

type AuthorizationPolicyResource = MeshResource<'AuthorizationPolicy', AuthorizationPolicySpec>;

const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

/** Istio's attachment: the root namespace and the workload's, a selector's labels a subset of the workload's, never with targetRefs. */
function applies(policy: AuthorizationPolicyResource, ctx: CompileContext): boolean {
  const ns = policy.metadata.namespace;
  if (ns !== ctx.rootNamespace && ns !== ctx.namespace) return false;
  if (policy.spec.targetRef || (policy.spec.targetRefs?.length ?? 0) > 0) return false;
  return labelsMatch(policy.spec.selector?.matchLabels ?? {}, ctx.workloadLabels);
}

/**
 * Compiles the AuthorizationPolicies that apply to the workload `ctx` describes, as istiod's
 * authz builder does for a sidecar. A condition key that cannot be evaluated in-process is an
 * error (the change is rejected), never a silently dropped condition.
 */
export function compileAuthorization(resources: readonly MeshResource[], ctx: CompileContext, sink: IssueSink): CompiledAuthorization {
  const policies = sortByAge(resources.filter((r): r is AuthorizationPolicyResource => r.kind === 'AuthorizationPolicy'));
  const trustDomains = ctx.trustDomains ?? [];
  const out: Record<AuthorizationAction, CompiledPolicy[]> = { ALLOW: [], DENY: [], AUDIT: [], CUSTOM: [] };
  for (const policy of policies) {
    const ref = resourceRef(policy);
    // Every policy is checked, applying to this workload or not: a key no workload could
    // evaluate is refused wherever the policy is read (`sidecarless validate` too).
    const applying = applies(policy, ctx);
    const action = (policy.spec.action ?? 'ALLOW') as AuthorizationAction;
    const rules: CompiledRule[] = [];
    let failed = false;
    (policy.spec.rules ?? []).forEach((rule, r) => {
      const compiled = compileRule(rule, { policyNamespace: ref.namespace, trustDomains }, (path, message) => {
        failed = true;
        const at = ['spec', 'rules', r, ...path];
        sink.error({ code: 'unsupported', message, resource: ref, path: at.join('.').replace(/\.(\d+)/g, '[$1]'), location: locate(policy, at) });
      });
      if (compiled) rules.push(compiled);
    });
    if (failed || !applying) continue;
    if (rules.length === 0) rules.push(MATCH_NEVER);
    const provider = action === 'CUSTOM' ? policy.spec.provider?.name : undefined;
    if (provider !== undefined && ctx.authzProviders && !ctx.authzProviders.has(provider)) {
      sink.warn({
        code: 'unknown-provider',
        message: `extension provider "${provider}" is not defined (createMesh options meshConfig.extensionProviders and inbound.authorizers); as in Istio, every request this policy matches is denied`,
        resource: ref,
        path: 'spec.provider.name',
        location: locate(policy, ['spec', 'provider', 'name']),
      });
    }
    out[action].push({
      ref,
      name: `${ref.namespace}/${ref.name}`,
      action,
      dryRun: GO_TRUE.has(policy.metadata.annotations?.['istio.io/dry-run'] ?? ''),
      provider,
      rules,
    });
  }
  const empty = out.ALLOW.length + out.DENY.length + out.AUDIT.length + out.CUSTOM.length === 0;
  return empty ? NO_AUTHORIZATION : { custom: out.CUSTOM, deny: out.DENY, allow: out.ALLOW, audit: out.AUDIT, empty };
}
