import type { FieldPath } from '../../document.js';
import type { ServiceEntrySpec, WorkloadEntrySpec } from '../../schema/index.js';
import { checkExportTo, checkPort, checkSelectorLabels } from './common-rules.js';
import {
  isIpAddress,
  protocolKind,
  validateFqdn,
  validateIpSubnet,
  validateLabels,
  validatePartialWildcard,
  validatePortName,
  validateProtocol,
  validateWildcardDomain,
} from './names.js';
import type { RuleReport, RuleSubject } from './rule-report.js';
import { q } from './rule-report.js';

/** ValidateUnixAddress, for the part after `unix://`. */
export function validateUnixAddress(address: string): string | undefined {
  if (address === '') return 'unix address must not be empty';
  if (address.startsWith('@')) return undefined;
  return address.startsWith('/') && !address.endsWith('/') ? undefined : `${address} is not an absolute path to a file`;
}

/**
 * validateWorkloadEntry: a WorkloadEntry, or an endpoint of a STATIC ServiceEntry (`servicePorts`
 * set, and only IP or unix addresses allowed).
 */
export function checkWorkloadEntry(entry: WorkloadEntrySpec, path: FieldPath, report: RuleReport, servicePorts?: ReadonlySet<string>): void {
  const address = entry.address ?? '';
  if (address === '') {
    if (!entry.network) {
      report.error([...path, 'address'], 'address is required');
      return;
    }
    report.warn([...path, 'address'], `address is unset with network ${q(entry.network)}`);
  }
  const unix = address.startsWith('unix://');
  if (unix) {
    const bad = validateUnixAddress(address.slice('unix://'.length));
    if (bad) report.error([...path, 'address'], bad);
    if (Object.keys(entry.ports ?? {}).length > 0) report.error([...path, 'ports'], `unix endpoint ${address} must not include ports`);
  } else if (address !== '' && !isIpAddress(address)) {
    if (servicePorts) report.error([...path, 'address'], `endpoint address ${q(address)} is not a valid IP address`);
    else if (validateFqdn(address)) report.error([...path, 'address'], `endpoint address ${q(address)} is not a valid FQDN or an IP address`);
  }
  checkEndpointPorts(entry, path, report, servicePorts);
  for (const bad of validateLabels(entry.labels)) report.error([...path, 'labels'], bad);
  if (unix && servicePorts && servicePorts.size !== 1) report.error(path, 'exactly 1 service port required for unix endpoints');
}

function checkEndpointPorts(entry: WorkloadEntrySpec, path: FieldPath, report: RuleReport, servicePorts: ReadonlySet<string> | undefined): void {
  for (const [name, port] of Object.entries(entry.ports ?? {})) {
    const at = [...path, 'ports', name];
    if (servicePorts && !servicePorts.has(name)) report.error(at, `endpoint port ${port} is not defined by the service entry`);
    const badName = validatePortName(name);
    if (badName) report.error(at, badName);
    checkPort(port, at, report);
  }
}

/** istiod's ValidateServiceEntry. */
export function checkServiceEntry(spec: ServiceEntrySpec, subject: RuleSubject, report: RuleReport): void {
  const resolution = spec.resolution ?? 'NONE';
  if (spec.workloadSelector) {
    checkSelectorLabels(
      spec.workloadSelector.labels,
      ['spec', 'workloadSelector', 'labels'],
      report,
      'service entry: workload selector specified without labels, will be applied to all services in namespace',
    );
  }
  spec.hosts.forEach((host, i) => {
    const bad = host === '*' ? `invalid host ${host}` : validateWildcardDomain(host);
    if (bad) report.error(['spec', 'hosts', i], bad);
    const partial = host === '*' || resolution === 'DYNAMIC_DNS' ? undefined : validatePartialWildcard(host);
    if (partial) report.warn(['spec', 'hosts', i], partial);
  });
  const addresses = spec.addresses ?? [];
  addresses.forEach((address, i) => {
    const bad = validateIpSubnet(address);
    if (bad) report.error(['spec', 'addresses', i], bad);
  });
  const ports = spec.ports ?? [];
  const portNames = new Set<string>();
  // Istio allocates an address itself unless resolution is NONE or the label opts out.
  const autoAllocated =
    resolution !== 'NONE' && subject.labels['networking.istio.io/enable-autoallocate-ip']?.toLowerCase() !== 'false' && addresses.length === 0;
  ports.forEach((port, i) => {
    const path = ['spec', 'ports', i];
    if (portNames.has(port.name)) report.error([...path, 'name'], `service entry port name ${q(port.name)} already defined`);
    portNames.add(port.name);
    if (port.targetPort) checkPort(port.targetPort, [...path, 'targetPort'], report);
    if (addresses.length === 0 && !autoAllocated && (!port.protocol || port.protocol === 'TCP')) {
      report.warn(path, 'addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled');
    }
    const badName = validatePortName(port.name);
    if (badName) report.error([...path, 'name'], badName);
    const badProtocol = validateProtocol(port.protocol);
    if (badProtocol) report.error([...path, 'protocol'], badProtocol);
  });
  const endpoints = spec.endpoints ?? [];
  switch (resolution) {
    case 'NONE':
      if (spec.workloadSelector) report.warn(['spec', 'workloadSelector'], 'workloadSelector should not be set when resolution mode is NONE');
      break;
    case 'STATIC':
      endpoints.forEach((endpoint, i) => checkWorkloadEntry(endpoint, ['spec', 'endpoints', i], report, portNames));
      break;
    case 'DNS':
    case 'DNS_ROUND_ROBIN':
      checkDnsEntry(spec, resolution, portNames, report);
      break;
    case 'DYNAMIC_DNS':
      checkDynamicDnsEntry(spec, subject, report);
      break;
  }
  if (resolution !== 'NONE' && spec.hosts.length > 1) {
    const i = ports.findIndex((p) => protocolKind(p.protocol) !== 'http' && protocolKind(p.protocol) !== 'tls');
    if (i !== -1) report.error(['spec', 'ports', i, 'protocol'], 'multiple hosts provided with non-HTTP, non-TLS ports');
  }
  checkExportTo(spec.exportTo, subject.namespace, ['spec', 'exportTo'], report, { serviceEntry: true });
}

function checkDnsEntry(spec: ServiceEntrySpec, resolution: string, portNames: ReadonlySet<string>, report: RuleReport): void {
  const endpoints = spec.endpoints ?? [];
  if (endpoints.length === 0) {
    const i = spec.hosts.findIndex((h) => validateFqdn(h) !== undefined);
    if (i !== -1) {
      report.error(
        ['spec', 'hosts', i],
        `hosts must be FQDN or contain only prefix wildcards if no endpoints are provided for resolution mode ${resolution}, ${validateFqdn(spec.hosts[i]!)}`,
      );
    }
  }
  endpoints.forEach((endpoint, i) => {
    const path = ['spec', 'endpoints', i];
    const address = endpoint.address ?? '';
    if (!isIpAddress(address) && validateFqdn(address)) {
      report.error([...path, 'address'], `endpoint address ${q(address)} is not a valid FQDN or an IP address`);
    }
    for (const bad of validateLabels(endpoint.labels)) report.error([...path, 'labels'], bad);
    checkEndpointPorts(endpoint, path, report, portNames);
  });
  if (
    (spec.addresses?.length ?? 0) > 0 &&
    spec.hosts.length > 1 &&
    (spec.ports ?? []).some((p) => protocolKind(p.protocol) === 'tcp' || protocolKind(p.protocol) === 'tls')
  ) {
    report.warn(['spec', 'hosts'], 'service entry can not have more than one host specified simultaneously with address and tcp port');
  }
}

function checkDynamicDnsEntry(spec: ServiceEntrySpec, subject: RuleSubject, report: RuleReport): void {
  spec.hosts.forEach((host, i) => {
    if (!host.startsWith('*')) report.error(['spec', 'hosts', i], 'host must be wildcarded for resolution mode DYNAMIC_DNS');
  });
  if ((spec.addresses?.length ?? 0) > 0) {
    report.error(
      ['spec', 'addresses'],
      'addresses cannot be set for resolution type DYNAMIC_DNS. HTTP route domains will only be generated from the hosts field values',
    );
  }
  if ((spec.endpoints?.length ?? 0) > 0) {
    report.error(['spec', 'endpoints'], 'endpoints cannot be set for resolution type DYNAMIC_DNS. Destination IP address determined from hosts field values');
  }
  (spec.ports ?? []).forEach((port, i) => {
    const protocol = (port.protocol ?? '').toLowerCase();
    if (!['http', 'tls', 'grpc', 'http2'].includes(protocol)) {
      report.error(['spec', 'ports', i, 'protocol'], 'only HTTP, TLS, GRPC, and HTTP2 protocols are supported for resolution type DYNAMIC_DNS');
    }
  });
  const waypoint = subject.labels['istio.io/use-waypoint'];
  if (spec.location === 'MESH_INTERNAL' && waypoint && waypoint.toLowerCase() !== 'none') {
    report.error(['spec', 'location'], 'location MESH_INTERNAL with resolution type DYNAMIC_DNS is not supported when using waypoints');
  }
}
