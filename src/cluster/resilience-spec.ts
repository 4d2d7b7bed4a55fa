import type { TrafficPolicySpec } from '../config/snapshot.js';
import type { ConnectionPoolSpec, RetryBudgetSpec } from '../resilience/connection-pool-policy.js';
import { compileConnectionSettings, compileLimits } from '../resilience/connection-pool-policy.js';
import type { OutlierDetectionSpec } from '../resilience/outlier-policy.js';
import { compileOutlierPolicy } from '../resilience/outlier-policy.js';
import type { ClusterResilience } from './cluster.js';
import { NO_RESILIENCE } from './cluster.js';

/**
 * A merged traffic policy's `connectionPool`, `outlierDetection` and `retryBudget`, compiled once
 * per snapshot and cluster (the load-balancing part is {@link compileLoadBalancing}'s).
 */
export function compileResilience(policy: TrafficPolicySpec | undefined): ClusterResilience {
  if (!policy) return NO_RESILIENCE;
  const pool = policy.connectionPool as ConnectionPoolSpec | undefined;
  const budget = policy.retryBudget as RetryBudgetSpec | undefined;
  return {
    outlier: compileOutlierPolicy(policy.outlierDetection as OutlierDetectionSpec | undefined),
    limits: compileLimits(pool, budget),
    connections: compileConnectionSettings(pool),
  };
}
