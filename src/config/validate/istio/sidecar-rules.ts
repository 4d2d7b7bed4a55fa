import type { FieldPath } from '../../document.js';
import type { SidecarPort, SidecarSpec } from '../../schema/index.js';
import { checkDestination, checkPort, checkSelectorLabels } from './common-rules.js';
import {
  isDns1123Label,
  isIpAddress,
  protocolKind,
  validateFqdn,
  validatePartialWildcard,
  validatePortName,
  validateProtocol,
  validateWildcardDomain,
} from './names.js';
import type { RuleReport, RuleSubject } from './rule-report.js';
import { q } from './rule-report.js';
import { checkServerTls } from './server-tls-rules.js';
import { validateUnixAddress } from './service-entry-rules.js';
import { checkConnectionPool } from './traffic-policy-rules.js';

const DEFAULT_ENDPOINT_HOSTS = new Set(['', '127.0.0.1', '0.0.0.0', '::1', '::']);

/** istiod's ValidateSidecar. */
export function checkSidecar(spec: SidecarSpec, subject: RuleSubject, report: RuleReport): void {
  if (spec.workloadSelector) {
    checkSelectorLabels(
      spec.workloadSelector.labels,
      ['spec', 'workloadSelector', 'labels'],
      report,
      'sidecar: workload selector specified without labels, will be applied to all services in namespace',
    );
  }
  if (!spec.egress?.length && !spec.ingress?.length && !spec.outboundTrafficPolicy && !spec.inboundConnectionPool) {
    report.error(['spec'], 'sidecar: empty configuration provided');
    return;
  }
  const ports = new Set<number>();
  spec.ingress?.forEach((ingress, i) => {
    const path = ['spec', 'ingress', i];
    if (ingress.port.targetPort) report.error([...path, 'port', 'targetPort'], 'targetPort has no impact on Sidecars');
    checkListenerPort(ingress.port, ingress.bind, [...path, 'port'], report);
    const number = ingress.port.number ?? 0;
    if (ports.has(number)) report.error([...path, 'port', 'number'], 'sidecar: ports on IP bound listeners must be unique');
    ports.add(number);
    if (ingress.defaultEndpoint) checkDefaultEndpoint(ingress.defaultEndpoint, [...path, 'defaultEndpoint'], report);
    const tls = ingress.tls;
    if (tls) {
      const at = [...path, 'tls'];
      if (tls.subjectAltNames?.length) report.error([...at, 'subjectAltNames'], 'sidecar: subjectAltNames is not supported in ingress tls');
      if (tls.httpsRedirect) report.error([...at, 'httpsRedirect'], 'sidecar: httpsRedirect is not supported');
      if (tls.credentialName) report.error([...at, 'credentialName'], 'sidecar: credentialName is not currently supported');
      if (tls.credentialNames?.length) report.error([...at, 'credentialNames'], 'sidecar: credentialNames is not currently supported');
      if (tls.tlsCertificates?.length) report.error([...at, 'tlsCertificates'], 'sidecar: tls_certificates is not currently supported');
      if (tls.mode === 'ISTIO_MUTUAL' || tls.mode === 'AUTO_PASSTHROUGH')
        report.error([...at, 'mode'], `configuration is invalid: cannot set mode to ${tls.mode} in sidecar ingress tls`);
      if (protocolKind(ingress.port.protocol) !== 'tls') report.error(at, 'server cannot have TLS settings for non HTTPS/TLS ports');
      checkServerTls(tls, at, report);
    }
    checkConnectionPool(ingress.connectionPool, [...path, 'connectionPool'], report);
    if (ingress.connectionPool?.http && protocolKind(ingress.port.protocol) !== 'http') {
      report.warn(
        [...path, 'connectionPool', 'http'],
        `sidecar: HTTP connection pool settings are configured for port ${number} (${q(ingress.port.name ?? '')}) but its protocol is not HTTP (${ingress.port.protocol ?? ''}); only TCP settings will apply`,
      );
    }
  });
  checkConnectionPool(spec.inboundConnectionPool, ['spec', 'inboundConnectionPool'], report);
  checkEgress(spec, subject.namespace, report);
  const policy = spec.outboundTrafficPolicy;
  const proxy = policy?.egressProxy;
  if (proxy) {
    const at = ['spec', 'outboundTrafficPolicy', 'egressProxy'];
    // An unset mode is REGISTRY_ONLY.
    if (policy.mode !== 'ALLOW_ANY') report.error(at, 'sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode');
    else {
      const badHost = validateFqdn(proxy.host);
      if (badHost) report.error([...at, 'host'], badHost);
      if (!proxy.port) report.error(at, 'sidecar: egress_proxy port must be non-nil');
      else checkDestination(proxy, at, report);
    }
  }
}

function checkEgress(spec: SidecarSpec, namespace: string, report: RuleReport): void {
  const ports = new Set<number>();
  const sockets = new Set<string>();
  let catchAll = false;
  const egress = spec.egress ?? [];
  egress.forEach((listener, i) => {
    const path = ['spec', 'egress', i];
    if (!listener.port) {
      if (catchAll) {
        report.error(path, 'sidecar: egress can have only one listener with empty port');
        return;
      }
      if (i === egress.length - 1) catchAll = true;
      else report.error(path, 'sidecar: the egress listener with empty port should be the last listener in the list');
    } else {
      const port = listener.port;
      if (port.targetPort) report.error([...path, 'port', 'targetPort'], 'targetPort has no impact on Sidecars');
      const number = port.number ?? 0;
      if (number === 0) {
        // Port 0 is a listener on a unix domain socket.
        if (port.name) {
          const bad = validatePortName(port.name);
          if (bad) report.error([...path, 'port', 'name'], bad);
        }
        const badProtocol = validateProtocol(port.protocol);
        if (badProtocol) report.error([...path, 'port', 'protocol'], badProtocol);
        const bind = listener.bind ?? '';
        if (!bind.startsWith('unix://')) report.error([...path, 'bind'], 'sidecar: ports with 0 value must have a unix domain socket bind address');
        else {
          const bad = validateUnixAddress(bind.slice('unix://'.length));
          if (bad) report.error([...path, 'bind'], bad);
        }
        if (listener.captureMode && listener.captureMode !== 'DEFAULT' && listener.captureMode !== 'NONE') {
          report.error([...path, 'captureMode'], 'sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners');
        }
        if (sockets.has(bind)) report.error([...path, 'bind'], 'sidecar: unix domain socket values for listeners must be unique');
        sockets.add(bind);
      } else {
        checkListenerPort(port, listener.bind, [...path, 'port'], report);
        if (ports.has(number)) report.error([...path, 'port', 'number'], 'sidecar: ports on IP bound listeners must be unique');
        ports.add(number);
      }
    }
    checkEgressHosts(listener.hosts, namespace, [...path, 'hosts'], report);
  });
}

function checkListenerPort(port: SidecarPort, bind: string | undefined, path: FieldPath, report: RuleReport): void {
  if (port.name) {
    const bad = validatePortName(port.name);
    if (bad) report.error([...path, 'name'], bad);
  }
  const badProtocol = validateProtocol(port.protocol);
  if (badProtocol) report.error([...path, 'protocol'], badProtocol);
  checkPort(port.number ?? 0, [...path, 'number'], report);
  if (bind && !isIpAddress(bind)) report.error([...path.slice(0, -1), 'bind'], `${bind} is not a valid IP`);
}

function checkDefaultEndpoint(endpoint: string, path: FieldPath, report: RuleReport): void {
  if (endpoint.startsWith('unix://')) {
    const bad = validateUnixAddress(endpoint.slice('unix://'.length));
    if (bad) report.error(path, bad);
    return;
  }
  const split = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(endpoint);
  if (!split) {
    report.error(path, `address ${endpoint}: missing port in address`);
    return;
  }
  const host = split[1] ?? split[2] ?? '';
  if (!DEFAULT_ENDPOINT_HOSTS.has(host)) {
    report.error(path, 'sidecar: defaultEndpoint must be of form 127.0.0.1:<port>,0.0.0.0:<port>,[::1]:port,[::]:port,unix://filepath or unset');
  }
  const port = split[3]!;
  if (!/^[+-]?\d+$/.test(port)) report.error(path, `sidecar: defaultEndpoint port (${port}) is not a number: strconv.Atoi: parsing ${q(port)}: invalid syntax`);
  else checkPort(Number(port), path, report);
}

/** Egress hosts `namespace/dnsName` (ValidateNamespaceSlashWildcardHostname), and Istio's duplicate-host warnings. */
function checkEgressHosts(hosts: readonly string[], namespace: string, path: FieldPath, report: RuleReport): void {
  if (hosts.length === 0) {
    report.error(path, 'sidecar: egress listener must contain at least one host');
    return;
  }
  const byNamespace = new Map<string, Set<string>>();
  hosts.forEach((entry, i) => {
    const slash = entry.indexOf('/');
    if (slash !== -1 && !entry.startsWith('~')) {
      const ns = entry.slice(0, slash) === '.' ? namespace : entry.slice(0, slash);
      const host = entry.slice(slash + 1);
      const seen = byNamespace.get(ns) ?? new Set<string>();
      byNamespace.set(ns, seen);
      if (host !== '*' ? seen.has(host) || seen.has('*') : seen.size > 0) report.warn([...path, i], `duplicated egress host: ${entry}`);
      seen.add(host);
    }
    for (const bad of namespaceSlashHostProblems(entry)) report.error([...path, i], bad);
  });
  if (byNamespace.get('*')?.has('*') && byNamespace.size !== 1) report.warn(path, '`*/*` host select all resources, no other hosts can be added');
}

function namespaceSlashHostProblems(entry: string): string[] {
  const slash = entry.indexOf('/');
  if (slash === -1) return ['host must be of form namespace/dnsName'];
  const problems: string[] = [];
  const namespace = entry.slice(0, slash);
  const host = entry.slice(slash + 1);
  if (namespace === '' || host === '') problems.push('config namespace and dnsName in host entry cannot be empty');
  const ns = namespace.replace(/^~/, '');
  if (ns !== '' && ns !== '*' && ns !== '.' && !isDns1123Label(ns)) problems.push(`invalid namespace value ${q(namespace)} in sidecar`);
  if (host !== '*' && !host.includes('.')) problems.push('short names (non FQDN) are not allowed');
  const badDomain = validateWildcardDomain(host);
  if (badDomain) problems.push(badDomain);
  const partial = validatePartialWildcard(host);
  if (partial) problems.push(partial);
  return problems;
}
