import type { ResourceKind } from '../../resource.js';
import type {
  AuthorizationPolicySpec,
  DestinationRuleSpec,
  EnvoyFilterSpec,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
  ServiceEntrySpec,
  SidecarSpec,
  VirtualServiceSpec,
  WorkloadEntrySpec,
} from '../../schema/index.js';
import { checkDestinationRule } from './destination-rule-rules.js';
import { checkEnvoyFilter } from './envoy-filter-rules.js';
import { checkMetadata } from './metadata-rules.js';
import type { RuleReport, RuleSubject } from './rule-report.js';
import { checkAuthorizationPolicy, checkPeerAuthentication, checkRequestAuthentication } from './security-rules.js';
import { checkServiceEntry, checkWorkloadEntry } from './service-entry-rules.js';
import { checkSidecar } from './sidecar-rules.js';
import { checkVirtualService } from './virtual-service-rules.js';

/** Each Istio kind's rules; the spec has passed the CRD schema, so it has the generated type. */
const RULES: Partial<Record<ResourceKind, (spec: never, subject: RuleSubject, report: RuleReport) => void>> = {
  VirtualService: (spec: VirtualServiceSpec, subject, report) => checkVirtualService(spec, subject, report),
  DestinationRule: (spec: DestinationRuleSpec, subject, report) => checkDestinationRule(spec, subject, report),
  ServiceEntry: (spec: ServiceEntrySpec, subject, report) => checkServiceEntry(spec, subject, report),
  WorkloadEntry: (spec: WorkloadEntrySpec, _subject, report) => checkWorkloadEntry(spec, ['spec'], report),
  Sidecar: (spec: SidecarSpec, subject, report) => checkSidecar(spec, subject, report),
  PeerAuthentication: (spec: PeerAuthenticationSpec, subject, report) => checkPeerAuthentication(spec, subject, report),
  AuthorizationPolicy: (spec: AuthorizationPolicySpec, subject, report) => checkAuthorizationPolicy(spec, subject, report),
  RequestAuthentication: (spec: RequestAuthenticationSpec, subject, report) => checkRequestAuthentication(spec, subject, report),
  EnvoyFilter: (spec: EnvoyFilterSpec, subject, report) => checkEnvoyFilter(spec, subject, report),
};

/**
 * The checks istiod's validating webhook (`pkg/config/validation`) makes beyond the CRD schema, in
 * Istio's words. Like the webhook, they run on a spec the schema has already admitted.
 */
export function checkIstioRules(kind: ResourceKind, spec: unknown, name: string, subject: RuleSubject, report: RuleReport): void {
  if (kind !== 'RateLimitPolicy') checkMetadata(kind, (spec ?? {}) as { action?: string }, name, subject, report);
  RULES[kind]?.(spec as never, subject, report);
}
