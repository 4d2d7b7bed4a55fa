import type { Locality } from '../discovery/endpoint.js';
import { BalancerConfigError, HOST_SELECTION_RETRY_MAX_ATTEMPTS, randomUint32, type BalancerDeps, type LoadBalancer, type PickContext } from './balancer.js';
import { hostWeight, type Host } from './host.js';
import { computePriorityLoad, DEFAULT_OVERPROVISIONING_FACTOR, DEFAULT_PANIC_THRESHOLD_PERCENT } from './panic.js';
import { weightedIndex } from './random.js';

/** Istio `localityLbSetting.distribute[]`. */
export interface LocalityDistribute {
  /** Client locality pattern, `region/zone/subzone` with `*` wildcards. */
  readonly from: string;
  /** Endpoint locality pattern to weight (the weights of a rule should sum to 100). */
  readonly to: Readonly<Record<string, number>>;
}

/** Istio `localityLbSetting.failover[]`: region to region. */
export interface LocalityFailover {
  readonly from: string;
  readonly to: string;
}

/** Istio `trafficPolicy.loadBalancer.localityLbSetting`, plus what the data path knows of the caller. */
export interface LocalityLbOptions {
  /**
   * Istio `localityLbSetting.enabled` (the DestinationRule's, else the mesh's; mesh default true).
   * False: one priority, no locality weights.
   */
  readonly enabled?: boolean;
  /**
   * Whether failover may apply. Istio applies `failover`, `failoverPriority` and the default
   * locality priorities only when the DestinationRule sets `outlierDetection` (without it nothing
   * ever becomes unhealthy, so a lower priority would never be used). The data path passes
   * `outlierDetection !== undefined`. Default false. `distribute` applies regardless.
   */
  readonly failoverEnabled?: boolean;
  readonly distribute?: readonly LocalityDistribute[];
  readonly failover?: readonly LocalityFailover[];
  /** Istio `failoverPriority`: label keys, or `key=value` to compare with a fixed value. */
  readonly failoverPriority?: readonly string[];
  /** The caller's locality. */
  readonly clientLocality?: Locality;
  /** The caller's workload labels, compared by `failoverPriority`. */
  readonly clientLabels?: Readonly<Record<string, string>>;
  /** The caller's network (`topology.istio.io/network`). */
  readonly clientNetwork?: string;
}

/** Options of `PriorityBalancer`. */
export interface PriorityBalancerOptions {
  readonly locality?: LocalityLbOptions;
  /**
   * Envoy `healthy_panic_threshold`, default 50 (%); 0 disables panic. Istio sets it to
   * `outlierDetection.minHealthPercent` (default 0) when the DestinationRule has
   * `outlierDetection`, and leaves Envoy's 50 otherwise.
   */
  readonly panicThresholdPercent?: number;
  /** Envoy `overprovisioning_factor`, default 1.4 (140%). */
  readonly overprovisioningFactor?: number;
}

const NETWORK_LABEL = 'topology.istio.io/network';
const REGION_LABEL = 'topology.kubernetes.io/region';
const ZONE_LABEL = 'topology.kubernetes.io/zone';
const SUBZONE_LABEL = 'topology.istio.io/subzone';

/** Istio's `LocalityMatch`: `region/zone/subzone` pattern, `*` or a missing part matches anything. */
export function localityMatch(locality: Locality, pattern: string): boolean {
  const [region = '', zone = '', subZone = ''] = pattern.split('/');
  return (
    (region === '*' || locality.region === region) &&
    (zone === '*' || zone === '' || locality.zone === zone) &&
    (subZone === '*' || subZone === '' || locality.subZone === subZone)
  );
}

function localityKey(locality: Locality): string {
  return `${locality.region}/${locality.zone}/${locality.subZone}`;
}

/** Istio's `LbPriority`: 0 same subzone, 1 same zone, 2 same region, 3 elsewhere. */
function localityPriority(client: Locality, endpoint: Locality): number {
  if (client.region !== endpoint.region) return 3;
  if (client.zone !== endpoint.zone) return 2;
  return client.subZone === endpoint.subZone ? 0 : 1;
}

function endpointLabel(host: Host, key: string): string {
  const ep = host.endpoint;
  const explicit = ep.labels[key];
  if (explicit !== undefined) return explicit;
  switch (key) {
    case NETWORK_LABEL:
      return ep.network ?? '';
    case REGION_LABEL:
      return ep.locality.region;
    case ZONE_LABEL:
      return ep.locality.zone;
    case SUBZONE_LABEL:
      return ep.locality.subZone;
    default:
      return '';
  }
}

function clientLabel(options: LocalityLbOptions, key: string): string {
  const explicit = options.clientLabels?.[key];
  if (explicit !== undefined) return explicit;
  const locality = options.clientLocality;
  switch (key) {
    case NETWORK_LABEL:
      return options.clientNetwork ?? '';
    case REGION_LABEL:
      return locality?.region ?? '';
    case ZONE_LABEL:
      return locality?.zone ?? '';
    case SUBZONE_LABEL:
      return locality?.subZone ?? '';
    default:
      return '';
  }
}

/** Where each host goes: its (uncompacted) priority, or -1 when it takes no traffic. */
interface LocalityPlan {
  readonly priority: number[];
  /** Locality weights when balancing is locality-weighted (Envoy `locality_weighted_lb_config`). */
  readonly localityWeights: Map<string, number> | undefined;
}

/**
 * Assigns priorities and locality weights as Istio's `ApplyLocalityLoadBalancer` does when it
 * writes EDS for this client.
 */
export function planLocality(hosts: readonly Host[], options: LocalityLbOptions | undefined): LocalityPlan {
  const priority = new Array<number>(hosts.length).fill(0);
  if (options === undefined || options.enabled === false) return { priority, localityWeights: undefined };
  const client = options.clientLocality ?? { region: '', zone: '', subZone: '' };
  const distribute = options.distribute ?? [];
  const failover = options.failover ?? [];
  const failoverPriority = options.failoverPriority ?? [];
  // Istio switches Envoy to locality-weighted balancing when distribute or failover is given.
  const weighted = distribute.length > 0 || failover.length > 0;
  const localityWeights = weighted ? defaultLocalityWeights(hosts) : undefined;

  if (distribute.length > 0) {
    const rule = distribute.find((d) => localityMatch(client, d.from));
    if (rule !== undefined && localityWeights !== undefined) applyDistribute(hosts, rule, localityWeights, priority);
    return { priority, localityWeights };
  }
  if (options.failoverEnabled !== true) return { priority, localityWeights };

  if (failoverPriority.length > 0) {
    const entries = failoverPriority.map((text) => {
      const parts = text.split('=');
      return { key: parts[0] ?? '', value: parts.length === 2 ? parts[1] : undefined };
    });
    // Istio skips label priorities for a client without labels; a fixed value needs none.
    const usable = entries.some((e) => e.value !== undefined || clientLabel(options, e.key) !== '');
    if (usable) {
      const n = entries.length;
      hosts.forEach((host, i) => {
        for (let j = 0; j < n; j++) {
          const { key, value } = entries[j]!;
          if ((value ?? clientLabel(options, key)) !== endpointLabel(host, key)) {
            priority[i] = n - j;
            return;
          }
        }
      });
    }
  }
  if (failoverPriority.length === 0 || failover.length > 0) {
    const rule = failover.find((f) => f.from === client.region);
    hosts.forEach((host, i) => {
      let p = localityPriority(client, host.endpoint.locality);
      if (p === 3 && rule !== undefined && host.endpoint.locality.region !== rule.to) p = 4;
      // Room for the five locality levels under each failoverPriority level, as Istio does.
      priority[i] = priority[i]! * 5 + p;
    });
  }
  return { priority, localityWeights };
}

/** Istio's locality weight when none is configured: the sum of its endpoints' weights. */
function defaultLocalityWeights(hosts: readonly Host[]): Map<string, number> {
  const weights = new Map<string, number>();
  for (const host of hosts) {
    const key = localityKey(host.endpoint.locality);
    weights.set(key, (weights.get(key) ?? 0) + hostWeight(host));
  }
  return weights;
}

/**
 * Istio's `applyLocalityWeights`: each `to` pattern (in the order written) claims the localities
 * it matches that no earlier pattern claimed, and splits its weight among them in proportion to
 * their own weights (rounded up). Localities no pattern claims take no traffic; neither do those
 * of a pattern with weight 0 (Istio would keep their original weight there, contradicting its own
 * "any locality not present will receive no traffic").
 */
function applyDistribute(hosts: readonly Host[], rule: LocalityDistribute, weights: Map<string, number>, priority: number[]): void {
  const original = new Map(weights);
  const unclaimed = new Set(weights.keys());
  const localities = new Map<string, Locality>();
  for (const host of hosts) localities.set(localityKey(host.endpoint.locality), host.endpoint.locality);
  weights.clear();
  for (const [pattern, weight] of Object.entries(rule.to)) {
    const claimed: string[] = [];
    let total = 0;
    for (const key of unclaimed) {
      if (localityMatch(localities.get(key)!, pattern)) {
        claimed.push(key);
        total += original.get(key)!;
      }
    }
    for (const key of claimed) {
      unclaimed.delete(key);
      const w = Math.ceil((original.get(key)! * weight) / total);
      if (w > 0) weights.set(key, w);
    }
  }
  hosts.forEach((host, i) => {
    if (!weights.has(localityKey(host.endpoint.locality))) priority[i] = -1;
  });
}

interface Group {
  readonly child: LoadBalancer;
  readonly weight: number;
}

interface Level {
  readonly groups: readonly Group[];
  readonly cumulative: Float64Array;
  readonly totalWeight: number;
}

/** A snapshot of how traffic is split, for `sidecarless explain` and tests. */
export interface PriorityDescription {
  readonly load: number;
  readonly panic: boolean;
  readonly hosts: readonly string[];
  readonly healthy: number;
  /** Effective locality weights (`region/zone/subzone` to weight), when locality-weighted. */
  readonly localities?: Readonly<Record<string, number>>;
}

/**
 * The cluster-level balancer: Istio locality settings become Envoy priorities and locality
 * weights; per priority Envoy's health, overprovisioning and panic rules decide the load; within
 * a priority a locality is drawn by effective weight (weight x min(1, 1.4 x healthy share)) and
 * its own child policy picks the host. Children see only healthy hosts, or all hosts of a
 * priority in panic.
 *
 * Endpoints that are not ready are left out entirely, as Istio leaves them out of EDS, so they
 * take no traffic even in panic. Hash-based children keep one child per priority and choose the
 * priority from the request hash (Envoy's thread-aware balancers do both), so affinity holds.
 */
export class PriorityBalancer implements LoadBalancer {
  readonly hashBased: boolean;
  private readonly panicThreshold: number;
  private readonly overprovisioningFactor: number;
  private spare: LoadBalancer | undefined;
  private children = new Map<string, LoadBalancer>();
  private levels: Level[] = [];
  private cumulativeLoad = new Int32Array(0);
  private description: PriorityDescription[] = [];
  private loads: readonly number[] = [];
  private priorities = new Map<Host, number>();
  /**
   * Whether a retry should re-draw priority and locality: only with several groups, and not for
   * hash-based children, which already step away from excluded hosts (a re-draw would repeat them).
   */
  private redraws = false;

  constructor(
    private readonly createChild: () => LoadBalancer,
    private readonly options: PriorityBalancerOptions,
    private readonly deps: BalancerDeps,
  ) {
    const threshold = options.panicThresholdPercent ?? DEFAULT_PANIC_THRESHOLD_PERCENT;
    if (!(threshold >= 0) || !Number.isFinite(threshold)) {
      throw new BalancerConfigError(`panic threshold must be a percentage >= 0, got ${threshold}`);
    }
    const factor = options.overprovisioningFactor ?? DEFAULT_OVERPROVISIONING_FACTOR;
    if (!(factor > 0) || !Number.isFinite(factor)) {
      throw new BalancerConfigError(`overprovisioning factor must be > 0, got ${factor}`);
    }
    this.panicThreshold = Math.min(100, threshold);
    this.overprovisioningFactor = factor;
    this.spare = createChild();
    this.hashBased = this.spare.hashBased === true;
  }

  update(hosts: readonly Host[]): void {
    const ready = hosts.filter((h) => h.endpoint.ready);
    const plan = planLocality(ready, this.options.locality);
    // Compact priorities to 0..N-1 without gaps, as Istio does before handing EDS to Envoy.
    const distinct = [...new Set(plan.priority.filter((p) => p >= 0))].sort((a, b) => a - b);
    const rank = new Map(distinct.map((p, i) => [p, i]));
    const members: Host[][] = distinct.map(() => []);
    ready.forEach((host, i) => {
      const p = plan.priority[i]!;
      if (p >= 0) members[rank.get(p)!]!.push(host);
    });
    const healthyCounts = members.map((m) => m.reduce((n, h) => n + (h.healthy ? 1 : 0), 0));
    const totals = members.map((m) => m.length);
    const { load, panic } = computePriorityLoad(healthyCounts, totals, this.panicThreshold, this.overprovisioningFactor);

    const previous = this.children;
    const children = new Map<string, LoadBalancer>();
    const child = (key: string, hostsOfChild: readonly Host[]): LoadBalancer => {
      let lb = previous.get(key) ?? children.get(key);
      if (lb === undefined) {
        lb = this.spare ?? this.createChild();
        this.spare = undefined;
      }
      children.set(key, lb);
      lb.update(hostsOfChild);
      return lb;
    };

    const levels: Level[] = [];
    const description: PriorityDescription[] = [];
    const factor = this.overprovisioningFactor;
    members.forEach((all, p) => {
      const healthy = all.filter((h) => h.healthy);
      const groups: Group[] = [];
      let localities: Record<string, number> | undefined;
      if (panic[p]) {
        groups.push({ child: child(`${p}|all`, all), weight: 1 });
      } else if (plan.localityWeights !== undefined && !this.hashBased) {
        localities = {};
        const byLocality = new Map<string, { all: number; healthy: Host[] }>();
        for (const host of all) {
          const key = localityKey(host.endpoint.locality);
          let entry = byLocality.get(key);
          if (entry === undefined) byLocality.set(key, (entry = { all: 0, healthy: [] }));
          entry.all++;
          if (host.healthy) entry.healthy.push(host);
        }
        for (const [key, entry] of byLocality) {
          const availability = Math.min(1, (factor * entry.healthy.length) / entry.all);
          const weight = (plan.localityWeights.get(key) ?? 0) * availability;
          if (weight <= 0) continue;
          localities[key] = weight;
          groups.push({ child: child(`${p}|${key}`, entry.healthy), weight });
        }
        // Envoy falls back to the priority's healthy hosts when no locality is available.
        if (groups.length === 0 && healthy.length > 0) groups.push({ child: child(`${p}|healthy`, healthy), weight: 1 });
      } else if (healthy.length > 0) {
        groups.push({ child: child(`${p}|healthy`, healthy), weight: 1 });
      }
      const cumulative = new Float64Array(groups.length);
      let totalWeight = 0;
      groups.forEach((g, i) => {
        totalWeight += g.weight;
        cumulative[i] = totalWeight;
      });
      levels.push({ groups, cumulative, totalWeight });
      description.push({
        load: load[p]!,
        panic: panic[p]!,
        hosts: all.map((h) => h.endpoint.key),
        healthy: healthy.length,
        ...(localities ? { localities } : {}),
      });
    });

    const cumulativeLoad = new Int32Array(levels.length);
    let sum = 0;
    load.forEach((l, i) => {
      sum += l;
      cumulativeLoad[i] = sum;
    });
    this.children = children;
    this.levels = levels;
    this.loads = load;
    const priorities = new Map<Host, number>();
    members.forEach((all, p) => {
      for (const host of all) priorities.set(host, p);
    });
    this.priorities = priorities;
    this.cumulativeLoad = cumulativeLoad;
    this.description = description;
    this.redraws = !this.hashBased && (levels.length > 1 || (levels[0]?.groups.length ?? 0) > 1);
  }

  pick(ctx: PickContext): Host | undefined {
    const first = this.chooseOnce(ctx);
    const exclude = ctx.exclude;
    if (first === undefined || exclude === undefined || !this.redraws) return first;
    // The child already re-attempted within its group; drawing the priority and locality again
    // may reach other hosts.
    if (!exclude(first)) return first;
    let last = first;
    for (let attempt = 1; attempt <= HOST_SELECTION_RETRY_MAX_ATTEMPTS; attempt++) {
      const host = this.chooseOnce(ctx);
      if (host === undefined) break;
      if (!exclude(host)) return host;
      last = host;
    }
    return last;
  }

  /** The priority level `host` is in, or undefined when it takes no traffic. */
  priorityOf(host: Host): number | undefined {
    return this.priorities.get(host);
  }

  /** Priorities in order, with their load, panic state and hosts. */
  describe(): readonly PriorityDescription[] {
    return this.description;
  }

  /**
   * A priority other than those in `avoid`: drawn by the levels' own load, or, when they carry
   * none (all of it sat on the avoided ones), the first with healthy hosts, where Envoy's
   * recomputed load would spill. Undefined when every level is avoided or empty.
   */
  private remotePriority(avoid: ReadonlySet<number>): number | undefined {
    let total = 0;
    let first: number | undefined;
    for (let p = 0; p < this.levels.length; p++) {
      if (avoid.has(p) || this.levels[p]!.groups.length === 0) continue;
      first ??= p;
      total += this.loads[p] ?? 0;
    }
    if (first === undefined || total <= 0) return first;
    let point = this.deps.random() * total;
    for (let p = 0; p < this.levels.length; p++) {
      if (avoid.has(p) || this.levels[p]!.groups.length === 0) continue;
      point -= this.loads[p] ?? 0;
      if (point < 0) return p;
    }
    return first;
  }

  private chooseOnce(ctx: PickContext): Host | undefined {
    const levels = this.levels;
    const count = levels.length;
    if (count === 0) return undefined;
    let level = levels[0]!;
    const avoid = ctx.avoidPriorities;
    if (count > 1 && avoid !== undefined && avoid.size > 0) {
      const p = this.remotePriority(avoid);
      if (p !== undefined) level = levels[p]!;
    } else if (count > 1) {
      const h = this.hashBased && ctx.hash !== undefined ? ctx.hash : randomUint32(this.deps.random);
      // Envoy's choosePriority: a point in 1..100 against the cumulative percentages.
      const point = (h % 100) + 1;
      const cumulative = this.cumulativeLoad;
      let p = 0;
      while (p < count - 1 && cumulative[p]! < point) p++;
      level = levels[p]!;
    }
    const groups = level.groups;
    if (groups.length === 0) return undefined;
    if (groups.length === 1) return groups[0]!.child.pick(ctx);
    const i = weightedIndex(level.cumulative, groups.length, this.deps.random() * level.totalWeight);
    return groups[i]!.child.pick(ctx);
  }
}
