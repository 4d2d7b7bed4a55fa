export {
  BalancerConfigError,
  BaseBalancer,
  HOST_SELECTION_RETRY_MAX_ATTEMPTS,
  NO_PICK_CONTEXT,
  type BalancerDeps,
  type LoadBalancer,
  type PickContext,
} from './balancer.js';
export { createHost, DEFAULT_PEAK_EWMA_TAU_MS, onDiscard, onFinish, onStart, peakEwmaLatency, type Host, type PeakEwmaState } from './host.js';
export { hashKey } from './hash.js';
export {
  balancerNames,
  createBalancer,
  createClusterBalancer,
  DEFAULT_BALANCER_POLICY,
  hasBalancer,
  isBuiltInBalancer,
  registerBalancer,
  type BalancerFactory,
  type BalancerOptions,
  type ClusterBalancerSpec,
} from './registry.js';
export { RoundRobinBalancer, type RoundRobinOptions } from './round-robin.js';
export { RandomBalancer } from './random.js';
export { DEFAULT_CHOICE_COUNT, LeastRequestBalancer, type LeastRequestOptions } from './least-request.js';
export { DEFAULT_MINIMUM_RING_SIZE, MAXIMUM_RING_SIZE, RingHashBalancer, type RingHashOptions } from './ring-hash.js';
export { DEFAULT_MAGLEV_TABLE_SIZE, MAXIMUM_MAGLEV_TABLE_SIZE, MaglevBalancer, type MaglevOptions } from './maglev.js';
export { PeakEwmaBalancer, type PeakEwmaOptions } from './peak-ewma.js';
export { DEFAULT_SLOW_START_MIN_WEIGHT_PERCENT, SlowStart, type SlowStartOptions } from './slow-start.js';
export { computePriorityLoad, DEFAULT_OVERPROVISIONING_FACTOR, DEFAULT_PANIC_THRESHOLD_PERCENT, type PriorityLoad } from './panic.js';
export {
  localityMatch,
  PriorityBalancer,
  type LocalityDistribute,
  type LocalityFailover,
  type LocalityLbOptions,
  type PriorityBalancerOptions,
  type PriorityDescription,
} from './locality.js';
