// The AuthorizationPolicies in force, as config compiles them
// (config/compile/security/authorization-policies.ts) and the authorization layer reads them.
import type { ResourceRef } from '../../issue.js';
import type { CompiledRule } from './compiled-rule.js';

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT' | 'CUSTOM';

/** One AuthorizationPolicy that applies to this workload, compiled. */
export interface CompiledPolicy {
  readonly ref: ResourceRef;
  /** `namespace/name`, as Istio names it in its logs (`ns[shop]-policy[deny-admin]`). */
  readonly name: string;
  readonly action: AuthorizationAction;
  /** `istio.io/dry-run: "true"`: evaluated and reported, never enforced. */
  readonly dryRun: boolean;
  /** CUSTOM: the extension provider's name. */
  readonly provider: string | undefined;
  /** Its rules; a policy without rules has one that never matches (istiod's rbacPolicyMatchNever). */
  readonly rules: readonly CompiledRule[];
}

/** The AuthorizationPolicies in force for this workload, by action, oldest first. */
export interface CompiledAuthorization {
  readonly custom: readonly CompiledPolicy[];
  readonly deny: readonly CompiledPolicy[];
  readonly allow: readonly CompiledPolicy[];
  readonly audit: readonly CompiledPolicy[];
  /** No policy at all: the inbound path skips authorization. */
  readonly empty: boolean;
}

export const NO_AUTHORIZATION: CompiledAuthorization = Object.freeze({ custom: [], deny: [], allow: [], audit: [], empty: true });
