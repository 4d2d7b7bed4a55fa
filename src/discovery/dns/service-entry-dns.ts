import type { ServiceDef, ServicePort } from '../../config/snapshot.js';
import type { DnsWatchSpec } from './dns-endpoint-source.js';

/**
 * The DNS watches behind one port of a `resolution: DNS` or `DNS_ROUND_ROBIN` ServiceEntry: one
 * per endpoint address (the host itself when the entry lists no endpoints), each resolved address
 * inheriting the endpoint's port, weight, labels, locality and network. The port's endpoint set is
 * the union of the watches' endpoints. Any other resolution needs no DNS: empty.
 *
 * `DNS` resolves every address and balances over all of them (Envoy's STRICT_DNS);
 * `DNS_ROUND_ROBIN` keeps one logical endpoint per address at the first address of the latest
 * answer (Envoy's LOGICAL_DNS; Istio allows at most one endpoint there).
 */
export function serviceEntryDnsWatches(service: ServiceDef, port: ServicePort): DnsWatchSpec[] {
  if (service.resolution !== 'DNS' && service.resolution !== 'DNS_ROUND_ROBIN') return [];
  const mode = service.resolution === 'DNS_ROUND_ROBIN' ? 'logical' : 'strict';
  return port.endpoints.map((endpoint) => ({
    // Per service and port: two entries resolving one name keep their own labels and weights.
    key: `${mode === 'logical' ? 'logical|' : ''}${service.host}:${port.number}|${endpoint.key}`,
    name: endpoint.address,
    port: endpoint.port,
    mode,
    template: {
      weight: endpoint.weight,
      labels: endpoint.labels,
      locality: endpoint.locality,
      ...(endpoint.network !== undefined ? { network: endpoint.network } : {}),
    },
  }));
}
