import { HEDGE_AFTER_ANNOTATION, parseHedgeAfter } from '../../resilience/hedge-policy.js';
import type { ResourceKind, ResourceMetadata } from '../resource.js';
import { checkIstioRules } from './istio/istio-rules.js';
import type { RuleReport } from './istio/rule-report.js';

/**
 * Checks the schema cannot express, made where Istio's validating webhook makes them and only once
 * the schema admitted the spec (as Kubernetes calls the webhook after schema validation), so a
 * change Istio would refuse is refused here too, and our own annotations are held to the same
 * standard.
 */
export function checkSemantics(kind: ResourceKind, spec: unknown, metadata: ResourceMetadata, report: RuleReport): void {
  const subject = { namespace: metadata.namespace, labels: metadata.labels ?? {}, annotations: metadata.annotations ?? {} };
  checkIstioRules(kind, spec, metadata.name, subject, report);
  const hedgeAfter = subject.annotations[HEDGE_AFTER_ANNOTATION];
  if (kind === 'DestinationRule' && hedgeAfter !== undefined && parseHedgeAfter(hedgeAfter) === undefined) {
    report.error(
      ['metadata', 'annotations', HEDGE_AFTER_ANNOTATION],
      `expected a duration of at least 1ms such as "50ms" or "0.2s", found "${hedgeAfter}"`,
      'annotation',
    );
  }
}
