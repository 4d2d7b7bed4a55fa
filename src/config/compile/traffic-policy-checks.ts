import { parseDuration } from '../../duration.js';
import type { MeshResource } from '../resource.js';
import { resourceRef } from '../resource.js';
import type { IssueSink } from './context.js';
import { locate } from './context.js';
import { checkBalancerAnnotation, checkLoadBalancing } from './load-balancing-checks.js';

type Obj = Readonly<Record<string, unknown>>;
type Path = readonly (string | number)[];

const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

const NON_NEGATIVE = {
  http: ['http1MaxPendingRequests', 'http2MaxRequests', 'maxRequestsPerConnection', 'maxRetries', 'maxConcurrentStreams'],
  tcp: ['maxConnections'],
} as const;

/**
 * The checks istiod's validation webhook makes on a DestinationRule's resilience settings beyond
 * what the CRD schema states (pilot `validateOutlierDetection`, `validateConnectionPool`): such a
 * rule is rejected by `kubectl apply` against Istio, so it is rejected here too. Every traffic
 * policy of the rule is checked: top level, subsets, and their port-level settings.
 */
export function checkTrafficPolicies(resource: MeshResource, sink: IssueSink, options: { readonly registeredBalancersOnly: boolean }): void {
  const spec = resource.spec as Obj;
  const written = resource.metadata.annotations ?? {};
  const annotations = options.registeredBalancersOnly ? checkBalancerAnnotation(written, reporter(resource, [], sink)) : written;
  const check = (policy: unknown, path: Path): void => {
    if (!isObject(policy)) return;
    checkPolicy(resource, policy, path, sink, annotations);
    const ports = policy['portLevelSettings'];
    if (Array.isArray(ports)) ports.forEach((p, i) => checkPolicy(resource, p, [...path, 'portLevelSettings', i], sink, annotations));
  };
  check(spec['trafficPolicy'], ['spec', 'trafficPolicy']);
  const subsets = spec['subsets'];
  if (Array.isArray(subsets)) subsets.forEach((s, i) => check(isObject(s) ? s['trafficPolicy'] : undefined, ['spec', 'subsets', i, 'trafficPolicy']));
}

/** Reports an error at a field under `path`. */
function reporter(resource: MeshResource, path: Path, sink: IssueSink): (field: Path, message: string) => void {
  return (field, message) => {
    const at = [...path, ...field];
    sink.error({ code: 'invalid-value', message, resource: resourceRef(resource), path: pathText(at), location: locate(resource, at) });
  };
}

function checkPolicy(resource: MeshResource, policy: unknown, path: Path, sink: IssueSink, annotations: Readonly<Record<string, string>>): void {
  if (!isObject(policy)) return;
  const report = reporter(resource, path, sink);
  let errors = 0;
  const error = (field: Path, message: string): void => {
    errors += 1;
    report(field, message);
  };

  const outlier = policy['outlierDetection'];
  if (isObject(outlier)) {
    for (const field of ['maxEjectionPercent', 'minHealthPercent'] as const) {
      const value = outlier[field];
      if (typeof value === 'number' && (value < 0 || value > 100)) {
        error(['outlierDetection', field], `expected a percentage from 0 to 100, found ${value}`);
      }
    }
    const local = outlier['consecutiveLocalOriginFailures'];
    if (typeof local === 'number' && local > 0 && outlier['splitExternalLocalOriginErrors'] !== true) {
      error(
        ['outlierDetection', 'consecutiveLocalOriginFailures'],
        'consecutiveLocalOriginFailures is set but splitExternalLocalOriginErrors is not true, so it would have no effect (istiod rejects this too)',
      );
    }
  }

  const pool = policy['connectionPool'];
  if (isObject(pool)) {
    const http = pool['http'];
    const tcp = pool['tcp'];
    if (http === undefined && tcp === undefined) {
      error(['connectionPool'], 'expected at least one of connectionPool.http or connectionPool.tcp, found an empty connectionPool');
    }
    for (const [section, fields] of [
      ['http', NON_NEGATIVE.http],
      ['tcp', NON_NEGATIVE.tcp],
    ] as const) {
      const settings = pool[section];
      if (!isObject(settings)) continue;
      for (const field of fields) {
        const value = settings[field];
        if (typeof value === 'number' && value < 0) error(['connectionPool', section, field], `expected a number of 0 or more, found ${value}`);
      }
    }
    if (isObject(tcp)) notNegativeDuration(tcp['idleTimeout'], ['connectionPool', 'tcp', 'idleTimeout'], error);
  }

  const budget = policy['retryBudget'];
  if (isObject(budget)) notNegativeDuration(budget['budgetInterval'], ['retryBudget', 'budgetInterval'], error);

  // What the data path would refuse when it builds a cluster from this policy, checked now with
  // the field's path (unless a finding above already names the cause).
  if (errors === 0) checkLoadBalancing(policy, annotations, [], error);
}

/** Durations the CRD leaves without a `>= 1ms` rule: 0 is meaningful, a negative one is not. */
function notNegativeDuration(value: unknown, field: Path, error: (field: Path, message: string) => void): void {
  if (typeof value !== 'string') return;
  const ms = parseDuration(value);
  if (ms !== undefined && ms < 0) error(field, `expected a duration of 0 or more, found "${value}"`);
}

function pathText(path: Path): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}
