import type { FieldPath } from '../../document.js';
import type { Destination, Percent } from '../../schema/index.js';
import { parseDurationNanos } from '../../../duration.js';
import { isDns1123Label, validateFqdn, validatePort, validateWildcardDomain } from './names.js';
import type { RuleReport } from './rule-report.js';
import { q } from './rule-report.js';

const MS = 1_000_000n;

/** agent.ValidateDuration: at least 1ms, in whole milliseconds. Unparsable text is the schema's to report. */
export function validateDuration(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  // The usual `500ms`, `2s`, `1h`: whole milliseconds, at least 1ms unless 0.
  const plain = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (plain) return Number(plain[1]) > 0 ? undefined : 'duration must be greater than 1ms';
  const ns = parseDurationNanos(text);
  if (ns === undefined) return undefined;
  if (ns < MS) return 'duration must be greater than 1ms';
  if (ns % MS !== 0n) return 'only durations to ms precision are supported';
  return undefined;
}

export function checkDuration(text: string | undefined, path: FieldPath, report: RuleReport): void {
  const bad = validateDuration(text);
  if (bad) report.error(path, bad);
}

/** A fractional percentage (validatePercentage): 0, or from 0.0001 to 100. */
export function checkPercentage(percent: Percent | undefined, path: FieldPath, report: RuleReport): void {
  const value = percent?.value ?? 0;
  if (value < 0 || value > 100 || (value > 0 && value < 0.0001)) {
    report.error([...path, 'value'], `percentage ${value} is neither 0.0, nor in range [0.0001, 100.0]`);
  }
}

/** A whole percentage (ValidatePercent). */
export function checkPercent(value: number | undefined, path: FieldPath, report: RuleReport): void {
  if (value !== undefined && (value < 0 || value > 100)) report.error(path, `percentage ${value} is not in range 0..100`);
}

export function checkPort(port: number, path: FieldPath, report: RuleReport): void {
  const bad = validatePort(port);
  if (bad) report.error(path, bad);
}

export function validateSubsetName(name: string): string | undefined {
  if (name === '') return 'subset name cannot be empty';
  return isDns1123Label(name) ? undefined : `subset name is invalid: ${name}`;
}

/** A route, mirror or egress-proxy destination (validateDestination). */
export function checkDestination(destination: Destination | undefined, path: FieldPath, report: RuleReport): void {
  if (!destination) return;
  const host = destination.host;
  const badHost = host === '*' ? `invalid destination host ${host}` : validateWildcardDomain(host);
  if (badHost) report.error([...path, 'host'], badHost);
  if (destination.subset) {
    const bad = validateSubsetName(destination.subset);
    if (bad) report.error([...path, 'subset'], bad);
  }
  if (destination.port) checkPort(destination.port.number ?? 0, [...path, 'port', 'number'], report);
}

/**
 * `exportTo` entries (validateExportTo): `.`, `*`, or namespaces, each once, `*` alone; `~` (no one)
 * only on a ServiceEntry, alone. A DestinationRule with a workloadSelector stays in its namespace.
 */
export function checkExportTo(
  exportTo: readonly string[] | undefined,
  namespace: string,
  path: FieldPath,
  report: RuleReport,
  options: { serviceEntry?: boolean; selectorDestinationRule?: boolean } = {},
): void {
  if (!exportTo || exportTo.length === 0) return;
  const seen = new Set<string>();
  exportTo.forEach((entry, i) => {
    const key = entry === '.' ? namespace : entry;
    if (seen.has(key)) {
      report.error(
        [...path, i],
        key !== entry ? `duplicate entries in exportTo: . and current namespace ${namespace}` : `duplicate entries in exportTo for entry ${entry}`,
      );
      return;
    }
    if (options.serviceEntry && entry === '~') {
      seen.add(key);
      return;
    }
    if (key === '~') report.error([...path, i], 'exportTo ~ (none) is not allowed for Istio configuration objects');
    else if (key !== '*' && key !== '.' && !isDns1123Label(key)) report.error([...path, i], 'only .,*, or a valid DNS 1123 label is allowed as exportTo entry');
    else seen.add(key);
  });
  if (options.selectorDestinationRule && seen.size > 0) {
    if (!seen.has(namespace)) report.error(path, 'destination rule with workload selector cannot have exportTo beyond current namespace');
    else if (seen.size > 1) report.error(path, 'destination rule with workload selector cannot have multiple entries in exportTo');
  }
  if (seen.has('*') && exportTo.length > 1) report.error(path, 'cannot have both public (*) and non-public exportTo values for a resource');
  if (seen.has('~') && exportTo.length > 1) report.error(path, 'cannot export service entry to no one (~) and someone');
}

/** Gateway references (validateGatewayNames); as in Istio, checking stops at the first name without a namespace. */
export function checkGatewayNames(names: readonly string[] | undefined, path: FieldPath, report: RuleReport): void {
  for (const [i, name] of (names ?? []).entries()) {
    const slash = name.indexOf('/');
    if (slash === -1) {
      if (name.includes('.')) {
        const [gateway = '', ns = ''] = name.split('.');
        report.warn([...path, i], `using legacy gatewayName format ${q(name)}; prefer the <namespace>/<name> format: ${q(`${ns}/${gateway}`)}`);
      }
      const bad = validateFqdn(name);
      if (bad) report.error([...path, i], bad);
      return;
    }
    const ns = name.slice(0, slash);
    const gateway = name.slice(slash + 1);
    if (ns === '' || gateway === '') report.error([...path, i], 'config namespace and gateway name cannot be empty');
    if (!isDns1123Label(ns)) report.error([...path, i], `invalid value for namespace: ${q(ns)}`);
    if (!isDns1123Label(gateway)) report.error([...path, i], `invalid value for gateway name: ${q(gateway)}`);
  }
}

/** A workload selector's labels (validateWorkloadSelector / ValidateAlphaWorkloadSelector). */
export function checkSelectorLabels(labels: Readonly<Record<string, string>> | undefined, path: FieldPath, report: RuleReport, emptyWarning: string): void {
  if (!labels || Object.keys(labels).length === 0) {
    report.warn(path, emptyWarning);
    return;
  }
  for (const [key, value] of Object.entries(labels)) {
    if (key === '') report.error([...path, key], `empty key is not supported in selector: ${q(`${key}=${value}`)}`);
    if (key.includes('*') || value.includes('*')) report.error([...path, key], `wildcard is not supported in selector: ${q(`${key}=${value}`)}`);
  }
}
