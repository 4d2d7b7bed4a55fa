import type { FieldPath } from '../../document.js';
import type {
  ClientTLSSettings,
  ConnectionPoolSettings,
  LoadBalancerSettings,
  LocalityLoadBalancerSetting,
  LocalityLoadBalancerSettingFailover,
  OutlierDetection,
  TrafficPolicy,
  ZoneAwareLoadBalancerSetting,
} from '../../schema/index.js';
import { parseDurationNanos } from '../../../duration.js';
import { checkDuration } from './common-rules.js';
import { isIpAddress, validateFqdn, validatePort } from './names.js';
import type { RuleReport } from './rule-report.js';
import { q } from './rule-report.js';

const TOPOLOGY_LABELS = new Set(['topology.kubernetes.io/region', 'topology.kubernetes.io/zone', 'topology.istio.io/subzone']);

/**
 * istiod's validateTrafficPolicy for one policy (top level or a subset's), with its port-level
 * settings. The percentage, negative-count, empty-pool and local-origin rules of the same function
 * are made when the rule is compiled (compile/traffic-policy-checks.ts), so they are not repeated.
 */
export function checkTrafficPolicy(policy: TrafficPolicy | undefined, namespace: string, path: FieldPath, report: RuleReport): void {
  if (!policy) return;
  const fields = ['outlierDetection', 'connectionPool', 'loadBalancer', 'tls', 'portLevelSettings', 'tunnel', 'proxyProtocol', 'retryBudget'] as const;
  if (fields.every((f) => policy[f] === undefined)) {
    report.error(path, 'traffic policy must have at least one field');
    return;
  }
  if (policy.tunnel && policy.proxyProtocol) {
    report.error(path, 'tunnel and proxyProtocol must not be set together');
    return;
  }
  checkOutlierDetection(policy.outlierDetection, [...path, 'outlierDetection'], report);
  checkConnectionPool(policy.connectionPool, [...path, 'connectionPool'], report);
  checkLoadBalancer(policy.loadBalancer, policy.outlierDetection, [...path, 'loadBalancer'], report);
  checkClientTls(policy.tls, namespace, [...path, 'tls'], report);
  policy.portLevelSettings?.forEach((port, i) => {
    const at = [...path, 'portLevelSettings', i];
    if (!port.port) report.error(at, 'portTrafficPolicy must have valid port');
    if (!port.outlierDetection && !port.connectionPool && !port.loadBalancer && !port.tls) {
      report.error(at, 'port traffic policy must have at least one field');
      return;
    }
    checkOutlierDetection(port.outlierDetection, [...at, 'outlierDetection'], report);
    checkConnectionPool(port.connectionPool, [...at, 'connectionPool'], report);
    checkLoadBalancer(port.loadBalancer, port.outlierDetection, [...at, 'loadBalancer'], report);
    checkClientTls(port.tls, namespace, [...at, 'tls'], report);
  });
  const tunnel = policy.tunnel;
  if (tunnel) {
    const at = [...path, 'tunnel'];
    if (tunnel.protocol && tunnel.protocol !== 'CONNECT' && tunnel.protocol !== 'POST')
      report.error([...at, 'protocol'], 'tunnel protocol must be "CONNECT" or "POST"');
    const fqdn = validateFqdn(tunnel.targetHost);
    if (fqdn && !isIpAddress(tunnel.targetHost)) {
      report.error([...at, 'targetHost'], `tunnel target host must be valid FQDN or IP address: ${fqdn}; ${tunnel.targetHost} is not a valid IP`);
    }
    const port = validatePort(tunnel.targetPort);
    if (port) report.error([...at, 'targetPort'], `tunnel target port is invalid: ${port}`);
  }
}

function checkOutlierDetection(outlier: OutlierDetection | undefined, path: FieldPath, report: RuleReport): void {
  if (!outlier) return;
  checkDuration(outlier.baseEjectionTime, [...path, 'baseEjectionTime'], report);
  checkDuration(outlier.interval, [...path, 'interval'], report);
}

/** Also Sidecar's inbound connection pools (validateConnectionPool). */
export function checkConnectionPool(pool: ConnectionPoolSettings | undefined, path: FieldPath, report: RuleReport): void {
  const http = pool?.http;
  if (http) {
    const at = [...path, 'http'];
    checkDuration(http.idleTimeout, [...at, 'idleTimeout'], report);
    if (http.h2UpgradePolicy === 'UPGRADE' && http.useClientProtocol) {
      report.error([...at, 'useClientProtocol'], 'use client protocol must not be true when H2UpgradePolicy is UPGRADE');
    }
    const keepAlive = http.http2KeepAlive;
    if (keepAlive) {
      if (keepAlive.interval === undefined) report.error([...at, 'http2KeepAlive'], 'http2 keepalive interval is required');
      else checkDuration(keepAlive.interval, [...at, 'http2KeepAlive', 'interval'], report);
      if (keepAlive.timeout === undefined) report.error([...at, 'http2KeepAlive'], 'http2 keepalive timeout is required');
      else checkDuration(keepAlive.timeout, [...at, 'http2KeepAlive', 'timeout'], report);
    }
  }
  const tcp = pool?.tcp;
  if (tcp) {
    const at = [...path, 'tcp'];
    checkDuration(tcp.connectTimeout, [...at, 'connectTimeout'], report);
    checkDuration(tcp.maxConnectionDuration, [...at, 'maxConnectionDuration'], report);
    // 0 turns the idle timeout off; a negative one is refused when the rule is compiled.
    const idle = tcp.idleTimeout === undefined ? undefined : parseDurationNanos(tcp.idleTimeout);
    if (idle !== undefined && idle > 0n) checkDuration(tcp.idleTimeout, [...at, 'idleTimeout'], report);
    checkDuration(tcp.tcpKeepalive?.time, [...at, 'tcpKeepalive', 'time'], report);
    checkDuration(tcp.tcpKeepalive?.interval, [...at, 'tcpKeepalive', 'interval'], report);
  }
}

/** Envoy's primality test for Maglev table sizes. */
function isPrime(x: number): boolean {
  if (x !== 0 && x < 4) return true;
  if (x % 2 === 0) return false;
  const limit = Math.floor(Math.sqrt(x));
  for (let f = 3; f <= limit; f += 2) if (x % f === 0) return false;
  return true;
}

function checkLoadBalancer(lb: LoadBalancerSettings | undefined, outlier: OutlierDetection | undefined, path: FieldPath, report: RuleReport): void {
  if (!lb) return;
  const hash = lb.consistentHash;
  if (hash) {
    const at = [...path, 'consistentHash'];
    const cookie = hash.httpCookie;
    if (cookie && cookie.name === '') report.error([...at, 'httpCookie', 'name'], 'name required for HttpCookie');
    const names = new Set<string>();
    cookie?.attributes?.forEach((attribute, i) => {
      if (attribute.name === '') report.error([...at, 'httpCookie', 'attributes', i, 'name'], 'cookie attribute name cannot be empty');
      else if (names.has(attribute.name)) report.error([...at, 'httpCookie', 'attributes', i, 'name'], `duplicate cookie attribute name: ${attribute.name}`);
      else names.add(attribute.name);
    });
    if (hash.minimumRingSize) {
      report.warn(
        [...at, 'minimumRingSize'],
        "consistent hash MinimumRingSize is deprecated, use ConsistentHashLB's RingHash configuration instead",
        'deprecated',
      );
      if (hash.ringHash || hash.maglev) report.error([...at, 'minimumRingSize'], 'only one of MinimumRingSize or Maglev/Ringhash can be specified');
    }
    const maglev = hash.maglev;
    if (maglev) {
      const size = maglev.tableSize ?? 0;
      const where = [...at, 'maglev', 'tableSize'];
      if (size === 0) report.error(where, 'tableSize must be set for maglev');
      if (size >= 5000011) report.error(where, 'tableSize must be less than 5000011 for maglev');
      if (!isPrime(size)) report.error(where, 'tableSize must be a prime number for maglev');
    }
  }
  if (lb.localityLbSetting && lb.zoneAwareLbSetting) report.error(path, 'only one of localityLbSetting and zoneAwareLbSetting can be set');
  checkLocalityLb(lb.localityLbSetting, outlier, [...path, 'localityLbSetting'], report);
  checkZoneAwareLb(lb.zoneAwareLbSetting, outlier, [...path, 'zoneAwareLbSetting'], report);
  const warmup = lb.warmup;
  if (warmup) {
    checkDuration(warmup.duration, [...path, 'warmup', 'duration'], report);
    if ((warmup.minimumPercent ?? 0) > 100) report.error([...path, 'warmup', 'minimumPercent'], 'minimumPercent value should be less than or equal to 100');
    if (warmup.aggression !== undefined && warmup.aggression !== null && warmup.aggression <= 0) {
      report.error([...path, 'warmup', 'aggression'], 'aggression should be greater than 0');
    }
  }
}

/** agent.ValidateLocalityLbSetting; like Istio, stops at the first distribution problem. */
function checkLocalityLb(lb: LocalityLoadBalancerSetting | undefined, outlier: OutlierDetection | undefined, path: FieldPath, report: RuleReport): void {
  if (!lb) return;
  const distribute = lb.distribute ?? [];
  const failover = lb.failover ?? [];
  if (distribute.length > 0 && failover.length > 0) {
    report.error(path, "can not simultaneously specify 'distribute' and 'failover'");
    return;
  }
  if (failover.length > 0) {
    const topology = (lb.failoverPriority ?? []).find((label) => TOPOLOGY_LABELS.has(label));
    if (topology) {
      report.error([...path, 'failoverPriority'], `can not simultaneously set 'failover' and topology label '${topology}' in 'failover_priority'`);
      return;
    }
  }
  for (const [i, entry] of distribute.entries()) {
    let total = 0;
    for (const [locality, weight] of Object.entries(entry.to ?? {})) {
      if (weight <= 0 || weight > 100) {
        report.error([...path, 'distribute', i, 'to', locality], 'locality weight must be in range [1, 100]');
        return;
      }
      total += weight;
    }
    if (total !== 100) {
      report.error([...path, 'distribute', i, 'to'], `total locality weight ${total} != 100`);
      return;
    }
    const bad = localitiesProblem(Object.keys(entry.to ?? {}));
    if (bad) report.error([...path, 'distribute', i, 'to'], bad);
  }
  const bad = localitiesProblem(distribute.map((d) => d.from ?? ''));
  if (bad) report.error([...path, 'distribute'], bad);
  checkFailover(
    failover,
    lb.failoverPriority,
    outlier,
    path,
    report,
    'locality lb failover settings must specify different regions',
    'locality lb failover only specify region',
    "locality lb failover region should not contain '*' wildcard",
  );
}

function checkZoneAwareLb(lb: ZoneAwareLoadBalancerSetting | undefined, outlier: OutlierDetection | undefined, path: FieldPath, report: RuleReport): void {
  if (!lb) return;
  (lb.failoverPriority ?? []).forEach((label, i) => {
    if (TOPOLOGY_LABELS.has(label)) {
      report.error(
        [...path, 'failoverPriority', i],
        `'failover_priority' for zone aware lb must not use topology label '${label}'; region- and zone-level routing are handled automatically`,
      );
    }
  });
  checkFailover(
    lb.failover ?? [],
    lb.failoverPriority,
    outlier,
    path,
    report,
    'zone aware lb failover settings must specify different regions',
    'zone aware lb failover only specifies region; zone and subzone failover are handled automatically',
    "zone aware lb failover region should not contain '*' wildcard",
  );
}

function checkFailover(
  failover: readonly LocalityLoadBalancerSettingFailover[],
  priority: readonly string[] | undefined,
  outlier: OutlierDetection | undefined,
  path: FieldPath,
  report: RuleReport,
  ...messages: [same: string, region: string, wildcard: string]
): void {
  if ((failover.length > 0 || (priority?.length ?? 0) > 0) && !outlier) report.warn(path, 'outlier detection policy must be provided for failover');
  failover.forEach((f, i) => {
    const from = f.from ?? '';
    const to = f.to ?? '';
    const at = [...path, 'failover', i];
    if (from === to) report.error(at, messages[0]);
    if (from.includes('/') || to.includes('/')) report.error(at, messages[1]);
    if (from.includes('*') || to.includes('*')) report.error(at, messages[2]);
  });
}

/** validateLocalities: `region/zone/subzone` with at most a trailing `*`, none covering another. */
function localitiesProblem(localities: readonly string[]): string | undefined {
  const regions = new Map<string, Map<string, Set<string>>>();
  for (const locality of localities) {
    const stars = locality.split('*').length - 1;
    if (stars > 0 && (stars > 1 || !locality.endsWith('*'))) return `locality ${locality} wildcard '*' number can not exceed 1 and must be in the end`;
    const overlap = `locality ${locality} overlap with previous specified ones`;
    if (regions.has('*')) return overlap;
    const items = splitN(locality, '/', 3);
    if (items.some((item) => item === '')) return `locality ${locality} must not contain empty region/zone/subzone info`;
    const [region = '', zone = '', subzone = ''] = items;
    const zones = regions.get(region);
    if (items.length === 1) {
      if (zones) return overlap;
      regions.set(region, new Map([['*', new Set(['*'])]]));
    } else if (items.length === 2) {
      if (zones) {
        if (zones.has('*') || zones.has(zone)) return overlap;
        zones.set(zone, new Set(['*']));
      } else regions.set(region, new Map([[zone, new Set(['*'])]]));
    } else if (zones) {
      if (zones.has('*')) return overlap;
      const subzones = zones.get(zone);
      if (subzones) {
        if (subzones.has('*') || subzones.has(subzone)) return overlap;
        subzones.add(subzone);
      } else zones.set(zone, new Set([subzone]));
    } else regions.set(region, new Map([[zone, new Set([subzone])]]));
  }
  return undefined;
}

/** Go's strings.SplitN. */
function splitN(text: string, separator: string, n: number): string[] {
  const parts = text.split(separator);
  return parts.length <= n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join(separator)];
}

/** agent.ValidateTLS for a destination's client TLS settings. */
function checkClientTls(tls: ClientTLSSettings | undefined, namespace: string, path: FieldPath, report: RuleReport): void {
  if (!tls) return;
  const credential = tls.credentialName ?? '';
  if (credential.startsWith('configmap://')) {
    const bad = configMapCredentialProblem(credential, namespace);
    if (bad) report.error([...path, 'credentialName'], `invalid configmap:// credentialName: ${bad}`);
  }
  if (tls.insecureSkipVerify === true) {
    if (tls.mode === 'SIMPLE' && (tls.caCertificates || credential || tls.subjectAltNames)) {
      report.error(path, 'cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true');
    }
    if (tls.mode === 'MUTUAL' && (tls.caCertificates || tls.subjectAltNames)) {
      report.error(path, 'cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true');
    }
  }
  if ((tls.mode === 'SIMPLE' || tls.mode === 'MUTUAL') && credential) {
    if (tls.clientCertificate || tls.caCertificates || tls.privateKey || tls.caCrl) {
      report.error(path, 'cannot specify client certificates or CA certificate or CA CRL If credentialName is set');
    }
    return;
  }
  if (tls.mode === 'MUTUAL') {
    if (!tls.clientCertificate) report.error([...path, 'clientCertificate'], 'client certificate required for mutual tls');
    if (!tls.privateKey) report.error([...path, 'privateKey'], 'private key required for mutual tls');
  }
}

/** `configmap://<namespace>/<name>`, in the rule's own namespace (credentials.ParseResourceName). */
function configMapCredentialProblem(credential: string, namespace: string): string | undefined {
  const parts = credential.slice('configmap://'.length).split('/');
  if (parts.length <= 1) return `invalid resource name ${q(credential)}. Expected namespace and name`;
  if (parts[0] === '') return `invalid resource name ${q(credential)}. Expected namespace`;
  if (parts[1] === '') return `invalid resource name ${q(credential)}. Expected name`;
  return parts[0] === namespace ? undefined : `namespace must match the configuration namespace ${q(namespace)}`;
}
