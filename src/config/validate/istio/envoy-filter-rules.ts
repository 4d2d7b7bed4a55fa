import type { FieldPath } from '../../document.js';
import type { EnvoyConfigObjectPatch, EnvoyFilterSpec } from '../../schema/index.js';
import { re2SyntaxError } from '../../../match/regex.js';
import { checkSelectorLabels } from './common-rules.js';
import type { RuleReport, RuleSubject } from './rule-report.js';

const LISTENER_CLASS = new Set(['LISTENER', 'FILTER_CHAIN', 'NETWORK_FILTER', 'HTTP_FILTER']);
const ROUTE_CLASS = new Set(['ROUTE_CONFIGURATION', 'VIRTUAL_HOST', 'HTTP_ROUTE']);
const HTTP_CONNECTION_MANAGER = 'envoy.filters.network.http_connection_manager';

/**
 * The structure istiod's ValidateEnvoyFilter checks in each patch (the Envoy configuration in its
 * `value` is istiod's to decode against Envoy's protos; the local rate-limit patches sidecarless
 * reads are checked apart, field by field).
 */
export function checkEnvoyFilter(spec: EnvoyFilterSpec, _subject: RuleSubject, report: RuleReport): void {
  if (spec.workloadSelector) {
    checkSelectorLabels(
      spec.workloadSelector.labels,
      ['spec', 'workloadSelector', 'labels'],
      report,
      'Envoy filter: workload selector specified without labels, will be applied to all services in namespace',
    );
  }
  spec.configPatches?.forEach((patch, i) => checkPatch(patch, ['spec', 'configPatches', i], report));
}

function checkPatch(patch: EnvoyConfigObjectPatch, path: FieldPath, report: RuleReport): void {
  const match = patch.match;
  if (match?.context === 'WAYPOINT') return;
  if (!patch.applyTo || patch.applyTo === 'INVALID') return report.error(path, 'Envoy filter: missing applyTo');
  if (!patch.patch) return report.error(path, 'Envoy filter: missing patch');
  const operation = patch.patch.operation;
  if (!operation || operation === 'INVALID') return report.error([...path, 'patch'], 'Envoy filter: missing patch operation');
  if (operation !== 'REMOVE' && patch.patch.value === undefined)
    return report.error([...path, 'patch'], 'Envoy filter: missing patch value for non-remove operation');
  const version = match?.proxy?.proxyVersion;
  if (version) {
    const at = [...path, 'match', 'proxy', 'proxyVersion'];
    if (version.length > 1024) report.warn(at, 'Envoy filter: proxyVersion match exceeds 1024 characters and will be ignored');
    else {
      const bad = re2SyntaxError(version);
      if (bad) return report.error(at, `Envoy filter: invalid regex for proxy version, [${bad}]`);
    }
  }
  // The match must name the kind of object the patch applies to.
  const typed = match && (match.listener || match.routeConfiguration || match.cluster || match.waypoint);
  if (!typed) return;
  const at = [...path, 'match'];
  if (LISTENER_CLASS.has(patch.applyTo)) {
    const listener = match.listener;
    if (!listener) return report.error(at, 'Envoy filter: applyTo for listener class objects cannot have non listener match');
    const filter = listener.filterChain?.filter;
    if (!filter) return;
    const where = [...at, 'listener', 'filterChain', 'filter'];
    if (patch.applyTo === 'LISTENER' || patch.applyTo === 'FILTER_CHAIN')
      report.warn(where, `Envoy filter: filter match has no effect when used with ${patch.applyTo}`);
    if (!filter.name) return report.error(where, 'Envoy filter: filter match has no name to match on');
    if (filter.subFilter) {
      if (patch.applyTo !== 'HTTP_FILTER')
        return report.error([...where, 'subFilter'], 'Envoy filter: subfilter match can be used with applyTo HTTP_FILTER only');
      if (filter.name !== HTTP_CONNECTION_MANAGER && filter.name !== 'envoy.http_connection_manager') {
        return report.error([...where, 'name'], `Envoy filter: subfilter match requires filter match with ${HTTP_CONNECTION_MANAGER}`);
      }
      if (!filter.subFilter.name) report.error([...where, 'subFilter'], 'Envoy filter: subfilter match has no name to match on');
    }
  } else if (ROUTE_CLASS.has(patch.applyTo) && !match.routeConfiguration) {
    report.error(at, 'Envoy filter: applyTo for http route class objects cannot have non route configuration match');
  } else if (patch.applyTo === 'CLUSTER' && !match.cluster) {
    report.error(at, 'Envoy filter: applyTo for cluster class objects cannot have non cluster match');
  }
}
