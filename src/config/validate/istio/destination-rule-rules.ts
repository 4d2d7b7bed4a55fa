import type { DestinationRuleSpec } from '../../schema/index.js';
import { checkExportTo, checkSelectorLabels, validateSubsetName } from './common-rules.js';
import { validateLabels, validateWildcardDomain } from './names.js';
import type { RuleReport, RuleSubject } from './rule-report.js';
import { checkTrafficPolicy } from './traffic-policy-rules.js';

/** istiod's ValidateDestinationRule. */
export function checkDestinationRule(spec: DestinationRuleSpec, subject: RuleSubject, report: RuleReport): void {
  const badHost = validateWildcardDomain(spec.host);
  if (badHost) report.error(['spec', 'host'], badHost);
  checkTrafficPolicy(spec.trafficPolicy, subject.namespace, ['spec', 'trafficPolicy'], report);
  const names = new Set<string>();
  spec.subsets?.forEach((subset, i) => {
    const path = ['spec', 'subsets', i];
    if (names.has(subset.name)) report.error([...path, 'name'], `duplicate subset names: ${subset.name}`);
    names.add(subset.name);
    const badName = validateSubsetName(subset.name);
    if (badName) report.error([...path, 'name'], badName);
    for (const bad of validateLabels(subset.labels)) report.error([...path, 'labels'], bad);
    checkTrafficPolicy(subset.trafficPolicy, subject.namespace, [...path, 'trafficPolicy'], report);
  });
  checkExportTo(spec.exportTo, subject.namespace, ['spec', 'exportTo'], report, { selectorDestinationRule: spec.workloadSelector !== undefined });
  if (spec.workloadSelector) {
    checkSelectorLabels(spec.workloadSelector.matchLabels, ['spec', 'workloadSelector', 'matchLabels'], report, 'workload selector specified without labels');
  }
}
