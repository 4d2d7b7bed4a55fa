import type { LeastRequestOptions } from './least-request.js';
import type { MaglevOptions } from './maglev.js';
import type { PeakEwmaOptions } from './peak-ewma.js';
import type { RingHashOptions } from './ring-hash.js';
import type { RoundRobinOptions } from './round-robin.js';

/**
 * Options handed to a policy factory: the union of the built-ins' options (each reads its own
 * and ignores the rest), plus `extra` for user-registered policies.
 */
export interface BalancerOptions extends RoundRobinOptions, LeastRequestOptions, RingHashOptions, MaglevOptions, PeakEwmaOptions {
  /** Free-form settings for a user-registered policy. */
  readonly extra?: Readonly<Record<string, unknown>>;
}
