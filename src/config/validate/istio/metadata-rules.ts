import type { ResourceKind } from '../../resource.js';
import type { RuleReport, RuleSubject } from './rule-report.js';
import { q } from './rule-report.js';

const DRY_RUN = 'istio.io/dry-run';
const GO_BOOLEANS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False']);
/** Annotations istiod sets on the resources it generates; a user setting them is refused. */
const INTERNAL_ANNOTATIONS = ['internal.istio.io/parent-namespace', 'internal.istio.io/parents'];

/** The annotation checks istiod makes before any kind's own rules (validateMetadata). */
export function checkMetadata(kind: ResourceKind, spec: { readonly action?: string }, name: string, subject: RuleSubject, report: RuleReport): void {
  const annotations = subject.annotations;
  const ref = `${subject.namespace}/${name}`;
  const dryRun = annotations[DRY_RUN];
  const path = ['metadata', 'annotations'];
  if (dryRun !== undefined) {
    if (kind !== 'AuthorizationPolicy') {
      report.error([...path, DRY_RUN], `${ref} has unsupported annotation ${DRY_RUN}, please remove the annotation`);
    } else {
      const action = spec.action ?? 'ALLOW';
      if (action !== 'ALLOW' && action !== 'DENY') {
        report.error([...path, DRY_RUN], `the annotation ${DRY_RUN} currently only supports action ALLOW/DENY, found action ${action} in ${ref}`);
      } else if (!GO_BOOLEANS.has(dryRun)) {
        report.error(
          [...path, DRY_RUN],
          `${ref} has annotation ${DRY_RUN} with invalid value (${dryRun}): strconv.ParseBool: parsing ${q(dryRun)}: invalid syntax`,
        );
      }
    }
  }
  if (annotations['internal.istio.io/webhook-always-reject'] !== undefined) {
    report.error([...path, 'internal.istio.io/webhook-always-reject'], '"internal.istio.io/webhook-always-reject" annotation found, rejecting');
  }
  for (const annotation of INTERNAL_ANNOTATIONS) {
    if (annotations[annotation] !== undefined) report.error([...path, annotation], `${q(annotation)} annotation found, this may not be set by users`);
  }
}
