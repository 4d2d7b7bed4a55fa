export { OverflowError, RateLimitedError, BreakerOpenError } from './errors.js';
export { classifyFailure, isCallerAbort, isGatewayError, type AttemptOutcome, type LocalOriginFailure } from './outcome.js';
export { ClusterLimits, UNLIMITED, type ConnectionLimits } from './connection-limits.js';
export {
  compileConnectionSettings,
  compileLimits,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_MIN_RETRY_CONCURRENCY,
  DEFAULT_RETRY_BUDGET_PERCENT,
  ISTIO_UNLIMITED,
  type ConnectionSettings,
  type LimitsPolicy,
  type RetryBudgetPolicy,
} from './connection-pool-policy.js';
export { OutlierDetector, type EjectionChange, type OutlierDetectorDeps } from './outlier-detector.js';
export { compileOutlierPolicy, type OutlierPolicy } from './outlier-policy.js';
export { BreakerTicket, ServiceBreaker, type BreakerFallbackResponse, type BreakerOptions, type BreakerRequest } from './service-breaker.js';
export type { BreakerEvent, BreakerState, EjectionEvent, EjectionReason } from './events.js';
