import type { DestinationActions, RouteActions } from '../routing/route-actions.js';
import type { CompiledDestination } from '../routing/route-table.js';
import { NoTlsRouteError, TlsPortPlaintextError } from '../routing/errors.js';
import type { TlsPortRoutes } from '../routing/tls-route.js';
import { connectionOf, pickTlsDestination, selectTlsRoute } from '../routing/tls-route.js';

const NO_HEADER_RULES: DestinationActions = Object.freeze({ authority: undefined, request: [], response: [] });

/**
 * What a call on a TLS or HTTPS port gets besides its destination: nothing. Envoy's tcp_proxy
 * passes the client's TLS bytes through: no HTTP route, header rule, fault, timeout or retry
 * applies (an https:// URL's connection is the client's own, end to end).
 */
export const TLS_PORT_ACTIONS: RouteActions = Object.freeze({
  directResponse: undefined,
  redirect: undefined,
  rewritePath: () => undefined,
  authority: undefined,
  requestHeaders: undefined,
  responseHeaders: undefined,
  destination: () => NO_HEADER_RULES,
  fault: undefined,
  timeoutMs: 0,
  retry: undefined,
});

/** The service itself, for ports no `tls` route applies to; one per compiled port routing. */
const serviceDestinations = new WeakMap<TlsPortRoutes, CompiledDestination>();

function serviceDestination(routes: TlsPortRoutes): CompiledDestination {
  let destination = serviceDestinations.get(routes);
  if (!destination) {
    destination = Object.freeze({ host: routes.host, subset: undefined, port: undefined, weight: 100, share: 1, spec: { destination: { host: routes.host } } });
    serviceDestinations.set(routes, destination);
  }
  return destination;
}

/**
 * Where a call to a TLS or HTTPS port goes: the destination of the `tls` route its SNI (the URL's
 * host name) selects, or the service itself when no `tls` route applies to the port. A plaintext
 * request, or an SNI no route matches, gets the coded error and nothing is sent.
 */
export function tlsPortDestination(routes: TlsPortRoutes, scheme: string, hostname: string, random: () => number): CompiledDestination | Error {
  if (scheme !== 'https') return new TlsPortPlaintextError(routes.host, routes.port, routes.protocol);
  if (!routes.resource) return serviceDestination(routes);
  const { sni, addresses } = connectionOf(hostname, routes);
  const route = selectTlsRoute(routes.routes, sni, addresses);
  const destination = route ? pickTlsDestination(route, random()) : undefined;
  if (!destination) return new NoTlsRouteError(routes.host, routes.port, sni, `${routes.resource.kind} ${routes.resource.namespace}/${routes.resource.name}`);
  return destination;
}
