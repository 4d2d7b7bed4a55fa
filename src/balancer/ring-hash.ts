import { BalancerConfigError, BaseBalancer, randomUint32, type BalancerDeps, type PickContext } from './balancer.js';
import { hashKey } from './hash.js';
import { hostWeight, type Host } from './host.js';

/** Options of the ring hash (Istio `consistentHash.ringHash`). */
export interface RingHashOptions {
  /**
   * Minimum number of virtual nodes on the ring. Istio `ringHash.minimumRingSize` (or the
   * deprecated `consistentHash.minimumRingSize`; Istio's 0 means unset); Envoy `minimum_ring_size`,
   * default 1024.
   */
  readonly minimumRingSize?: number;
  /** Upper bound of the ring size. Envoy `maximum_ring_size`, default and limit 8M (8,388,608). */
  readonly maximumRingSize?: number;
}

export const DEFAULT_MINIMUM_RING_SIZE = 1024;
export const MAXIMUM_RING_SIZE = 8_388_608;

/** Ring entries pack `hash * 2^21 + host index` into one double so a typed-array sort orders them. */
const INDEX_BITS = 2_097_152;

/**
 * RING_HASH as Envoy's ketama ring: every host gets `weight`-proportional virtual nodes hashed
 * from `"address:port_i"` (scaled so the lightest host gets a whole number and the ring has at
 * least `minimumRingSize` entries); a request goes to the first node clockwise of its hash.
 * Removing one of N hosts moves only about 1/N of the keys.
 *
 * Hosts are laid out in key order, so every client builds the same ring from the same endpoints
 * whatever order discovery listed them in.
 */
export class RingHashBalancer extends BaseBalancer {
  readonly hashBased = true;
  private readonly minimumRingSize: number;
  private readonly maximumRingSize: number;
  private hosts: Host[] = [];
  private ringHashes = new Uint32Array(0);
  private ringHosts = new Int32Array(0);
  private size = 0;

  constructor(
    options: RingHashOptions,
    private readonly deps: BalancerDeps,
  ) {
    super();
    const min = options.minimumRingSize || DEFAULT_MINIMUM_RING_SIZE;
    const max = options.maximumRingSize ?? MAXIMUM_RING_SIZE;
    if (!Number.isInteger(min) || min < 1 || min > MAXIMUM_RING_SIZE) {
      throw new BalancerConfigError(`ring hash minimumRingSize must be an integer in [1, ${MAXIMUM_RING_SIZE}], got ${min}`);
    }
    if (!Number.isInteger(max) || max < min || max > MAXIMUM_RING_SIZE) {
      throw new BalancerConfigError(`ring hash maximumRingSize must be an integer in [minimumRingSize (${min}), ${MAXIMUM_RING_SIZE}], got ${max}`);
    }
    this.minimumRingSize = min;
    this.maximumRingSize = max;
  }

  /** Number of virtual nodes on the current ring. */
  get ringSize(): number {
    return this.size;
  }

  update(hosts: readonly Host[]): void {
    const sorted = sortedByKey(hosts);
    this.hosts = sorted;
    const n = sorted.length;
    if (n === 0) {
      this.size = 0;
      return;
    }
    let total = 0;
    for (const host of sorted) total += hostWeight(host);
    let minNormalized = 1;
    for (const host of sorted) minNormalized = Math.min(minNormalized, hostWeight(host) / total);
    const scale = Math.min(Math.ceil(minNormalized * this.minimumRingSize) / minNormalized, this.maximumRingSize);
    const capacity = Math.ceil(scale) + n;
    const packed = new Float64Array(capacity);
    let count = 0;
    // Running sums keep fractional shares stable: host i's nodes end where its cumulative share does.
    let current = 0;
    let target = 0;
    for (let i = 0; i < n; i++) {
      const host = sorted[i]!;
      const prefix = `${host.endpoint.key}_`;
      target += (scale * hostWeight(host)) / total;
      for (let v = 0; current < target && count < capacity; v++, current++) {
        packed[count++] = hashKey(prefix + v) * INDEX_BITS + i;
      }
    }
    const ring = packed.subarray(0, count).sort();
    if (this.ringHashes.length < count) {
      this.ringHashes = new Uint32Array(count);
      this.ringHosts = new Int32Array(count);
    }
    for (let k = 0; k < count; k++) {
      const entry = ring[k]!;
      const index = entry % INDEX_BITS;
      this.ringHosts[k] = index;
      this.ringHashes[k] = (entry - index) / INDEX_BITS;
    }
    this.size = count;
  }

  protected choose(ctx: PickContext, attempt: number): Host | undefined {
    const size = this.size;
    if (size === 0) return undefined;
    const h = ctx.hash ?? randomUint32(this.deps.random);
    // First node clockwise: lowest index whose hash >= h, wrapping to 0.
    let lo = 0;
    let hi = size;
    const hashes = this.ringHashes;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    let at = lo === size ? 0 : lo;
    // Envoy's retry behaviour: step past the node, as if the host were not on the ring.
    if (attempt > 0) at = (at + attempt) % size;
    return this.hosts[this.ringHosts[at]!];
  }
}

/** Hosts ordered by `address:port`, so tables do not depend on discovery order. */
export function sortedByKey(hosts: readonly Host[]): Host[] {
  return hosts.slice().sort((a, b) => (a.endpoint.key < b.endpoint.key ? -1 : a.endpoint.key > b.endpoint.key ? 1 : 0));
}
