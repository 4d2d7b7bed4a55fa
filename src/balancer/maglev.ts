import { BalancerConfigError, BaseBalancer, randomUint32, type BalancerDeps, type PickContext } from './balancer.js';
import { hashKey } from './hash.js';
import { hostWeight, type Host } from './host.js';
import { sortedByKey } from './ring-hash.js';

/** Options of Maglev (Istio `consistentHash.maglev`). */
export interface MaglevOptions {
  /**
   * Lookup table size; must be prime and at most 5,000,011. Istio `maglev.tableSize` (0 means
   * unset); Envoy `table_size`, default 65537.
   */
  readonly tableSize?: number;
}

export const DEFAULT_MAGLEV_TABLE_SIZE = 65_537;
export const MAXIMUM_MAGLEV_TABLE_SIZE = 5_000_011;

/**
 * MAGLEV as Envoy's: each host walks its own permutation of the table (offset and skip from two
 * seeds of the host key's hash) and claims the next free slot; hosts take turns in proportion to
 * their weight until the table is full. A request goes to `table[hash % size]`. Lookups are one
 * array read, and removing a host moves little more than that host's share of the keys.
 */
export class MaglevBalancer extends BaseBalancer {
  readonly hashBased = true;
  readonly tableSize: number;
  private hosts: Host[] = [];
  private table: Int32Array;
  private empty = true;

  constructor(
    options: MaglevOptions,
    private readonly deps: BalancerDeps,
  ) {
    super();
    const size = options.tableSize || DEFAULT_MAGLEV_TABLE_SIZE;
    if (!Number.isInteger(size) || size > MAXIMUM_MAGLEV_TABLE_SIZE || !isPrime(size)) {
      throw new BalancerConfigError(`maglev tableSize must be a prime number <= ${MAXIMUM_MAGLEV_TABLE_SIZE}, got ${size}`);
    }
    this.tableSize = size;
    this.table = new Int32Array(size);
  }

  update(hosts: readonly Host[]): void {
    const sorted = sortedByKey(hosts);
    this.hosts = sorted;
    const n = sorted.length;
    this.empty = n === 0;
    if (n === 0) return;
    const m = this.tableSize;
    const offset = new Float64Array(n);
    const skip = new Float64Array(n);
    const position = new Float64Array(n);
    const weight = new Float64Array(n);
    const target = new Float64Array(n);
    let maxWeight = 0;
    for (let i = 0; i < n; i++) {
      const key = sorted[i]!.endpoint.key;
      offset[i] = hashKey(key, 0) % m;
      skip[i] = (hashKey(key, 1) % (m - 1)) + 1;
      position[i] = offset[i]!;
      weight[i] = hostWeight(sorted[i]!);
      if (weight[i]! > maxWeight) maxWeight = weight[i]!;
    }
    const table = this.table;
    table.fill(-1);
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < n && filled < m; i++) {
        // A host of maximum weight claims a slot every round; one of a third of it every third.
        if (iteration * weight[i]! < target[i]!) continue;
        target[i] = target[i]! + maxWeight;
        let c = position[i]!;
        while (table[c] !== -1) c = (c + skip[i]!) % m;
        table[c] = i;
        position[i] = (c + skip[i]!) % m;
        filled++;
      }
    }
  }

  protected choose(ctx: PickContext, attempt: number): Host | undefined {
    if (this.empty) return undefined;
    let h = ctx.hash ?? randomUint32(this.deps.random);
    // Envoy's retry behaviour: flip many bits so each attempt lands far from the last.
    if (attempt > 0) h = (h ^ -attempt) >>> 0;
    return this.hosts[this.table[h % this.tableSize]!];
  }
}

/** Deterministic primality by trial division; table sizes are at most ~5M, so this is cheap. */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}
