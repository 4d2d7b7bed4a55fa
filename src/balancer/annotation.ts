/**
 * Our addition, selected without changing what any Istio field means: a DestinationRule
 * annotation naming a registered balancer (`PEAK_EWMA`, or a user policy). Istio ignores
 * annotations it does not know, so the same YAML stays valid for a sidecar, which keeps using
 * `trafficPolicy.loadBalancer`.
 */
export const LOAD_BALANCER_ANNOTATION = 'sidecarless.io/load-balancer';
