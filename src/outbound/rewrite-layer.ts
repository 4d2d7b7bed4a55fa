import { hashKey } from '../balancer/index.js';
import { cookieHash } from '../balancer/cookie-hash.js';
import type { HashOn } from '../config/compile/load-balancing.js';
import type { OutboundRequest } from '../request-protocol.js';
import { QueryCache } from '../match/http-match.js';
import type { DestinationActions } from '../routing/route-actions.js';
import { applyHeaderOps } from '../routing/route-actions.js';
import type { OutboundCall } from './call.js';
import type { OutboundContext } from './context.js';
import type { Layer } from './layer.js';

/**
 * Envoy's per-request timeout header: a caller's value in milliseconds replaces the route's
 * timeout (0: none), and the header is not forwarded. The Istio request-timeouts task documents it.
 */
export const RQ_TIMEOUT_HEADER = 'x-envoy-upstream-rq-timeout-ms';

/**
 * What is sent: the route's header rules and path rewrite applied, the Host the backend is to
 * see, the consistent-hash key of the cluster's balancer (and a cookie to issue), and for a
 * destination without endpoints of its own, the origin and agent it is sent to as named.
 */
export class RewriteLayer implements Layer {
  constructor(
    private readonly next: Layer,
    private readonly ctx: OutboundContext,
  ) {}

  handle(call: OutboundCall): void {
    const { destination, actions, cluster, tls, request } = call;
    const destActions = destination && actions ? actions.destination(destination) : undefined;
    call.destinationActions = destActions;
    const headers = outgoingHeaders(call, destActions);
    call.outHeaders = headers;
    const newPath = actions?.rewritePath(call.path, call.matchIndex);
    const path = newPath === undefined ? request.path : call.query ? `${newPath}?${call.query}` : newPath;
    if (!cluster || cluster.passthrough) {
      // Known to configuration without endpoints (resolution NONE, a Kubernetes service found by
      // the platform's DNS): connect to the destination as named, keep the Host the caller sent.
      // A DestinationRule originating TLS (ISTIO_MUTUAL too) has its own agent and an https origin.
      const originate = tls?.kind === 'originate' || tls?.kind === 'mesh' ? tls : undefined;
      const { destinations } = this.ctx;
      call.passthrough = originate ? destinations.tlsAgent(originate) : destinations.passthrough();
      const host = call.host;
      call.sent = {
        ...request,
        origin: `${originate ? 'https' : call.scheme}://${host.includes(':') ? `[${host}]` : host}:${call.destinationPort}`,
        path,
        headers,
      };
    } else {
      const hashOn = cluster.hashOn;
      if (hashOn?.kind === 'cookie') {
        // A cookie policy may issue the cookie it hashes (Set-Cookie on the response).
        const cookie = cookieHash(hashOn, call.headers.get('cookie'), this.ctx.random);
        call.hash = cookie.hash;
        call.setCookie = cookie.setCookie;
      } else if (hashOn) {
        call.hash = hashOf(hashOn, call);
      }
      call.sent = { ...request, path, headers, servername: call.origin.servername } as OutboundRequest;
    }
    this.next.handle(call);
  }
}

/** The headers sent upstream; the caller's per-request timeout header is kept on the call instead. */
function outgoingHeaders(call: OutboundCall, destination: DestinationActions | undefined): Record<string, string | string[]> {
  const authority = call.authority;
  const raw = call.headers.raw;
  const noRules = !destination || (destination.request.length === 0 && destination.authority === undefined);
  if (noRules && (raw === undefined || raw === null)) return { host: authority };
  if (noRules && raw && typeof raw === 'object' && !Array.isArray(raw) && !(Symbol.iterator in raw)) {
    // Common case, no header rules: copy the caller's object as is (no lower-casing, no Map)
    // and add Host only if the caller did not set one.
    const plain: Record<string, string | string[]> = {};
    let host: string | string[] | undefined;
    for (const name in raw) {
      const value = (raw as Record<string, string | string[] | undefined>)[name];
      if (value === undefined) continue;
      if (name.length === 4 && name.toLowerCase() === 'host') host = value;
      else if (name.length === RQ_TIMEOUT_HEADER.length && name.toLowerCase() === RQ_TIMEOUT_HEADER) call.rqTimeoutHeader = String(value);
      else plain[name] = value;
    }
    plain.host = host ?? authority;
    return plain;
  }
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of call.headers.entries()) {
    if (name === RQ_TIMEOUT_HEADER) call.rqTimeoutHeader = value;
    else out[name] = value;
  }
  // The backend sees the service name it was called by, as behind a sidecar.
  out.host = destination?.authority ?? out.host ?? authority;
  if (destination) for (const ops of destination.request) applyHeaderOps(out, ops);
  return out;
}

/** The hash key of a header, query or source-IP policy (cookies: {@link cookieHash}). */
function hashOf(on: Exclude<HashOn, { kind: 'cookie' }>, call: OutboundCall): number | undefined {
  switch (on.kind) {
    case 'header': {
      const v = call.headers.get(on.name);
      return v === undefined ? undefined : hashKey(v);
    }
    case 'query': {
      const v = new QueryCache(call.query).get(on.name);
      return v === undefined ? undefined : hashKey(v);
    }
    case 'source-ip':
      // In-process, every request comes from this one workload: one stable key.
      return hashKey('source-ip');
  }
}
