import type { InboundRequest } from '../inbound/inbound-request.js';

/** What a CUSTOM provider answers about one request. */
export type CustomVerdict =
  | {
      readonly allow: true;
      /** Headers set on the request the application then sees (ext authz `headersToUpstreamOnAllow`). */
      readonly requestHeaders?: Readonly<Record<string, string>>;
      /** Headers added to the application's response (`headersToDownstreamOnAllow`). */
      readonly responseHeaders?: Readonly<Record<string, string>>;
    }
  | {
      readonly allow: false;
      readonly status?: number;
      readonly headers?: Readonly<Record<string, string>>;
      readonly body?: string;
    };

/** A CUSTOM action's provider: an ext authz HTTP service, or the application's own function. */
export interface CustomAuthorizer {
  check(request: InboundRequest): CustomVerdict | Promise<CustomVerdict>;
}

/**
 * The application's own CUSTOM provider (createMesh option `inbound.authorizers`): `true` or
 * `{ allow: true }` lets the request on; `false` denies with 403; a verdict object can set the
 * status, headers and body of the denial.
 */
export type AuthorizerFunction = (request: InboundRequest) => boolean | CustomVerdict | Promise<boolean | CustomVerdict>;

export function functionAuthorizer(fn: AuthorizerFunction): CustomAuthorizer {
  const verdict = (v: boolean | CustomVerdict): CustomVerdict => (typeof v === 'boolean' ? { allow: v } : v);
  return {
    check(request) {
      const result = fn(request);
      return result instanceof Promise ? result.then(verdict) : verdict(result);
    },
  };
}
