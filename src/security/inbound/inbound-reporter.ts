import type { AccessDeniedError, JwtAuthenticationError } from '../authz/errors.js';
import type { InboundRequest } from './inbound-request.js';

/** An AUDIT policy matched a request, or a dry-run policy would have decided it. */
export interface InboundAuditEvent {
  /** `audit`: an AUDIT policy matched. `dry-run`: an `istio.io/dry-run` policy was evaluated. */
  readonly kind: 'audit' | 'dry-run';
  /** `namespace/name` of the policy. */
  readonly policy: string;
  /** For dry-run: what the policy would have done. For audit: `matched`. */
  readonly result: 'allowed' | 'denied' | 'matched';
  readonly method: string;
  readonly path: string;
  readonly source: string;
}

/** Where inbound layers report decisions (events, logs, metrics). */
export interface InboundReporter {
  denied(error: AccessDeniedError | JwtAuthenticationError): void;
  audit(event: InboundAuditEvent): void;
}

/** Who sent a request, for events: the peer's principal, else its address. */
export function sourceOf(request: InboundRequest): string {
  return request.peer?.principal ?? request.sourceIp;
}
