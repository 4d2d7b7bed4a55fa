// One AuthorizationPolicy rule as the authorization layer evaluates it; the predicates are built by
// config/compile/security/authz-rule.ts.
import type { InboundRequest } from '../inbound/inbound-request.js';

/** One condition of a rule, on the request view. */
export type Predicate = (request: InboundRequest) => boolean;

/**
 * A rule of an AuthorizationPolicy as Envoy's RBAC policy istiod generates from it: it matches
 * when one of its permissions (`to`, with the `when` conditions on the destination) and one of
 * its principals (`from`, with the `when` conditions on the source) match.
 */
export class CompiledRule {
  constructor(
    private readonly permissions: readonly (readonly Predicate[])[],
    private readonly principals: readonly (readonly Predicate[])[],
  ) {}

  matches(request: InboundRequest): boolean {
    return someAll(this.permissions, request) && someAll(this.principals, request);
  }
}

function someAll(lists: readonly (readonly Predicate[])[], request: InboundRequest): boolean {
  for (let i = 0; i < lists.length; i++) {
    const list = lists[i]!;
    let ok = true;
    for (let j = 0; j < list.length; j++) {
      if (!list[j]!(request)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

/** A rule that never matches (istiod's policy for an ALLOW or AUDIT policy without rules). */
export const MATCH_NEVER = new CompiledRule([], []);
