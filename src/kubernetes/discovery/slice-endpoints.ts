import type { Endpoint, Locality } from '../../discovery/endpoint.js';
import type { KubeEndpointSlice, KubeService, KubeSliceEndpoint } from '../types.js';

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

/** What building a service port's endpoints needs besides its slices. */
export interface SliceContext {
  /** The labels of the pod an endpoint's `targetRef` names; empty when unknown. */
  podLabels(namespace: string, pod: string): Readonly<Record<string, string>> | undefined;
  /** Where an endpoint runs: from its node's labels, else from the slice's `zone`. */
  locality(endpoint: KubeSliceEndpoint): Locality;
}

/** The endpoints of one Service port, and why there are none when there are none. */
export interface ServiceEndpoints {
  readonly endpoints: readonly Endpoint[];
  readonly reason: string | undefined;
  /**
   * Endpoints whose slice says terminating: they take no new request and are not balanced over,
   * only counted (the endpoints gauge's `terminating`).
   */
  readonly terminating: readonly Endpoint[];
}

const NONE: readonly Endpoint[] = Object.freeze([]);

/**
 * An EndpointSlice endpoint takes new requests while it is ready and not terminating (a nil
 * condition is ready, as the API documents). Istio sends Envoy no other endpoint, so a
 * terminating pod is not picked, and its in-flight requests finish on the connections they hold.
 */
export function serving(endpoint: KubeSliceEndpoint): boolean {
  const c = endpoint.conditions;
  return c === undefined || (c.ready !== false && c.terminating !== true);
}

/**
 * The endpoints of `service` for the port a caller used (`reviews:9080`): the Service port's
 * `name` names the slice port, whose `port` is the pod's port (a named target port already
 * resolved per pod, which is why one service may have slices with different numbers).
 */
export function sliceEndpoints(
  host: string,
  service: KubeService,
  port: number,
  slices: Iterable<KubeEndpointSlice>,
  hostname: string | undefined,
  context: SliceContext,
): ServiceEndpoints {
  const servicePort = service.spec?.ports?.find((p) => p.port === port);
  const namespace = service.metadata.namespace ?? '';
  if (!servicePort) {
    const ports = (service.spec?.ports ?? []).map((p) => p.port).join(', ');
    return {
      endpoints: [],
      reason: `no healthy upstream: Service ${namespace}/${service.metadata.name} has no port ${port} (it has ${ports || 'none'})`,
      terminating: NONE,
    };
  }
  const portName = servicePort.name ?? '';
  const endpoints: Endpoint[] = [];
  let terminating: Endpoint[] | undefined;
  const seen = new Set<string>();
  let notServing = 0;
  for (const slice of slices) {
    // FQDN slices (deprecated) name hosts, not pods: nothing to balance over.
    if (slice.addressType === 'FQDN') continue;
    const slicePort = slice.ports?.find((p) => (p.name ?? '') === portName);
    if (slicePort?.port === undefined) continue;
    for (const e of slice.endpoints ?? []) {
      if (hostname !== undefined && e.hostname !== hostname) continue;
      const ready = serving(e);
      if (!ready) {
        notServing++;
        if (e.conditions?.terminating !== true) continue;
      }
      const pod = e.targetRef?.kind === 'Pod' && e.targetRef.name ? e.targetRef.name : undefined;
      const labels = (pod !== undefined ? context.podLabels(e.targetRef?.namespace ?? namespace, pod) : undefined) ?? NO_LABELS;
      const locality = context.locality(e);
      for (const address of e.addresses) {
        const key = `${address}:${slicePort.port}`;
        const endpoint: Endpoint = { key, address, port: slicePort.port, weight: 1, labels, locality, ready };
        if (!ready) (terminating ??= []).push(endpoint);
        else if (!seen.has(key)) {
          seen.add(key);
          endpoints.push(endpoint);
        }
      }
    }
  }
  // A pod listed twice (two slices during a handover) counts once, ready if either says so.
  const leaving = terminating ? dedupe(terminating, seen) : NONE;
  if (endpoints.length > 0) return { endpoints, reason: undefined, terminating: leaving };
  const what = hostname !== undefined ? `endpoint ${hostname} of ${host}` : host;
  const why = notServing > 0 ? `${notServing} endpoint(s) not ready or terminating` : 'its EndpointSlices list no endpoint for this port';
  return { endpoints, reason: `no healthy upstream: no ready ${what} port ${port} (${why})`, terminating: leaving };
}

/** The endpoints whose key is neither among `ready` nor repeated. */
function dedupe(list: readonly Endpoint[], ready: ReadonlySet<string>): readonly Endpoint[] {
  const seen = new Set(ready);
  return list.filter((e) => !seen.has(e.key) && seen.add(e.key));
}
