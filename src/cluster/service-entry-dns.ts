import type { ServiceDef, ServicePort } from '../config/snapshot.js';
import type { DnsWatchSpec } from '../discovery/dns/dns-endpoint-source.js';
import { isKubernetesServiceName, srvPortName } from '../discovery/dns/kubernetes-srv.js';

/**
 * The DNS watches behind one port of a `resolution: DNS` or `DNS_ROUND_ROBIN` ServiceEntry: one
 * per endpoint address (the host itself when the entry lists no endpoints), each resolved address
 * inheriting the endpoint's port, weight, labels, locality and network. The port's endpoint set is
 * the union of the watches' endpoints. Any other resolution needs no DNS: empty.
 *
 * `DNS` resolves every address and balances over all of them (Envoy's STRICT_DNS);
 * `DNS_ROUND_ROBIN` keeps one logical endpoint per address at the first address of the latest
 * answer (Envoy's LOGICAL_DNS; Istio allows at most one endpoint there).
 *
 * A name that is a Kubernetes service (`<svc>.<ns>.svc.<clusterDomain>`) behind a port whose
 * name can be a Kubernetes port name is looked up by SRV first (`_<port name>._tcp.<name>`), as
 * an absolute name: the records give each pod's target port, which a headless service's A records
 * cannot. Without such records the A/AAAA answer is used with the endpoint's port. Envoy's
 * STRICT_DNS never asks SRV; this is our addition. An endpoint whose port was written (`ports` of
 * the endpoint, `targetPort`) keeps it: what the entry says wins over what DNS suggests.
 */
export function serviceEntryDnsWatches(service: ServiceDef, port: ServicePort, clusterDomain: string): DnsWatchSpec[] {
  if (service.resolution !== 'DNS' && service.resolution !== 'DNS_ROUND_ROBIN') return [];
  const mode = service.resolution === 'DNS_ROUND_ROBIN' ? 'logical' : 'strict';
  const portName = srvPortName(port.name);
  return port.endpoints.map((endpoint) => {
    const srv = portName !== undefined && endpoint.port === port.number && isKubernetesServiceName(endpoint.address, clusterDomain);
    return {
      // Per service and port: two entries resolving one name keep their own labels and weights.
      key: `${mode === 'logical' ? 'logical|' : ''}${service.host}:${port.number}|${endpoint.key}`,
      name: srv && !endpoint.address.endsWith('.') ? `${endpoint.address}.` : endpoint.address,
      port: endpoint.port,
      ...(srv ? { portName, protocol: 'tcp' as const } : {}),
      mode,
      template: {
        weight: endpoint.weight,
        labels: endpoint.labels,
        locality: endpoint.locality,
        ...(endpoint.network !== undefined ? { network: endpoint.network } : {}),
        ...(endpoint.tlsMode !== undefined ? { tlsMode: endpoint.tlsMode } : {}),
      },
    };
  });
}
