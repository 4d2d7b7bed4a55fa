import type { ClusterBalancerSpec } from '../../balancer/index.js';
import { balancerNames, BalancerConfigError, createClusterBalancer, hasBalancer, isBuiltInBalancer, MAXIMUM_RING_SIZE } from '../../balancer/index.js';
import { systemClock, systemRandom } from '../../clock.js';
import { compileLoadBalancing, LOAD_BALANCER_ANNOTATION } from './load-balancing.js';
import { UNKNOWN_LOCALITY } from '../../discovery/endpoint.js';
import type { TrafficPolicySpec } from '../snapshot.js';

type Obj = Readonly<Record<string, unknown>>;
export type FieldPath = readonly (string | number)[];
export type ReportError = (at: FieldPath, message: string) => void;

const isObject = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Who calls does not change whether a policy's options are valid: the probe runs as nobody in particular. */
const NEUTRAL_CALLER = { locality: UNKNOWN_LOCALITY, labels: {} };
const PROBE_DEPS = { clock: systemClock, random: systemRandom };

const LOAD_BALANCER_ANNOTATION_PATH: FieldPath = ['metadata', 'annotations', LOAD_BALANCER_ANNOTATION];

/**
 * The `sidecarless.io/load-balancer` annotation names a registered policy. Checked when the
 * snapshot is compiled, so an unknown name rejects the change instead of failing requests.
 * Returns the annotations the policies of the rule are to be checked with.
 */
export function checkBalancerAnnotation(annotations: Readonly<Record<string, string>>, error: ReportError): Readonly<Record<string, string>> {
  const name = annotations[LOAD_BALANCER_ANNOTATION];
  if (name === undefined || hasBalancer(name)) return annotations;
  error(LOAD_BALANCER_ANNOTATION_PATH, `expected a registered load balancer policy (one of ${balancerNames().join(', ')}), found ${JSON.stringify(name)}`);
  const { [LOAD_BALANCER_ANNOTATION]: _unknown, ...rest } = annotations;
  return rest;
}

/**
 * What a cluster built from this traffic policy would refuse: ring sizes beyond Envoy's bounds
 * with their own field path, then the balancer a cluster would build, made once here (built-in
 * policies only: a policy the application registered is first run when the mesh builds a
 * cluster from the candidate snapshot, before it becomes current).
 */
export function checkLoadBalancing(policy: TrafficPolicySpec, annotations: Readonly<Record<string, string>>, path: FieldPath, error: ReportError): void {
  const lb = policy['loadBalancer'];
  const hash = isObject(lb) ? lb['consistentHash'] : undefined;
  let found = false;
  if (isObject(hash)) {
    const ring = hash['ringHash'];
    const sizes: [unknown, FieldPath][] = [
      [isObject(ring) ? ring['minimumRingSize'] : undefined, ['loadBalancer', 'consistentHash', 'ringHash', 'minimumRingSize']],
      [hash['minimumRingSize'], ['loadBalancer', 'consistentHash', 'minimumRingSize']],
    ];
    for (const [size, field] of sizes) {
      if (typeof size === 'number' && size > MAXIMUM_RING_SIZE) {
        error([...path, ...field], `expected a ring size of at most ${MAXIMUM_RING_SIZE} (Envoy's maximum), found ${size}`);
        found = true;
      }
    }
  }
  if (found || (lb === undefined && policy['outlierDetection'] === undefined && annotations[LOAD_BALANCER_ANNOTATION] === undefined)) return;
  const { spec } = compileLoadBalancing(policy, annotations, NEUTRAL_CALLER);
  if (!isBuiltInBalancer(spec.policy)) return;
  const refused = probe(spec);
  if (refused !== undefined) error([...path, lb !== undefined ? 'loadBalancer' : 'outlierDetection'], refused);
}

/** Probe outcomes by what a built-in balancer checks: thousands of rules share a few settings. */
const probed = new Map<string, string | undefined>();
const PROBED_KEPT = 1_024;

/** What building the balancer refuses (undefined: nothing). */
function probe(spec: ClusterBalancerSpec): string | undefined {
  // The leaf policy checks its options, the priority wrapper its panic threshold; locality
  // settings were checked by istiod's rules already.
  const key = `${spec.policy}|${spec.panicThresholdPercent ?? ''}|${JSON.stringify(spec.options ?? {})}`;
  if (probed.has(key)) return probed.get(key);
  let refused: string | undefined;
  try {
    createClusterBalancer(spec, PROBE_DEPS);
  } catch (cause) {
    if (!(cause instanceof BalancerConfigError)) throw cause;
    refused = cause.message;
  }
  if (probed.size >= PROBED_KEPT) probed.clear();
  probed.set(key, refused);
  return refused;
}
