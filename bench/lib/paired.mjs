// Paired rounds: the way the data-path benches compare clients on a shared machine.
//
// A round runs every variant twice, back to back, forward then backward (A B C C B A; the next
// round C B A A B C), so the variants of one round see the same machine and a load that rises or
// falls steadily during the round weighs on each alike. A figure is the MEDIAN OF PER-ROUND
// DIFFERENCES (or ratios), printed with its interquartile range. Medians taken per variant and
// then subtracted mix rounds run under different load: their noise is larger than the differences
// looked for. A round during which processes other than ours used more than `otherLimit` cores is
// thrown away and run again (at most 3 x `rounds` attempts in all), and said so.
// No collection is forced between runs: a run's garbage may be collected in the next one, but a
// forced collection would take the cost of a run's garbage out of every run; over rounds in both
// orders, scavenges fall on the variants in proportion to what they allocate.
import { getHeapStatistics, GCProfiler } from 'node:v8';
import { cpuMeter, waitQuiet } from './common.mjs';

/**
 * Runs `call(i)` `n` times with `concurrency` calls in flight and measures this process: client
 * CPU per request (process.cpuUsage, user + system, all threads), requests per second, and the
 * garbage collector (scavenges and full collections in the run, their time, bytes allocated per
 * request from the heap's growth between collections). `finish`: awaited before the run's clock
 * and CPU are read (work the run leaves queued, such as spans to export, is the run's).
 * v8.GCProfiler does not report every collection: for the same run it gave 12 scavenges where
 * `node --trace-gc` printed over 200 (docs/performance.md, "Correction"). Read its scavenge counts
 * and GC time as a rough sign, not a measurement; the bytes per request agree with a heap profile.
 */
export async function runLoad(call, n, concurrency, finish) {
  let next = 0;
  let errors = 0;
  let firstError;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try {
        await call(i);
      } catch (error) {
        errors++;
        firstError ??= error;
      }
    }
  };
  const gc = new GCProfiler();
  gc.start();
  const heap0 = getHeapStatistics().used_heap_size;
  const thread0 = process.threadCpuUsage?.();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (finish) await finish();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const thread = thread0 && process.threadCpuUsage(thread0);
  const heap1 = getHeapStatistics().used_heap_size;
  const { statistics } = gc.stop();
  let allocated = 0;
  let before = heap0;
  let scavenges = 0;
  let fullGcs = 0;
  let gcUs = 0;
  for (const s of statistics) {
    allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - before);
    before = s.afterGC.heapStatistics.usedHeapSize;
    gcUs += s.cost;
    if (s.gcType === 'Scavenge' || s.gcType === 'MinorMarkSweep') scavenges++;
    else if (s.gcType === 'MarkSweepCompact') fullGcs++;
  }
  allocated += Math.max(0, heap1 - before);
  return {
    n,
    ms,
    rps: (n / ms) * 1000,
    cpuUs: (cpu.user + cpu.system) / n,
    userUs: cpu.user / n,
    systemUs: cpu.system / n,
    /** The main thread alone (no GC helper threads), where a CPU profile samples. */
    threadCpuUs: thread ? (thread.user + thread.system) / n : NaN,
    bytes: allocated / n,
    scavenges,
    fullGcs,
    gcUs: gcUs / n,
    errors,
    firstError,
  };
}

/** Two runs of one variant in a round as one: totals added, per-request figures weighted. */
export function combineRuns(a, b) {
  const n = a.n + b.n;
  const per = (k) => (a[k] * a.n + b[k] * b.n) / n;
  const out = { ...a };
  for (const k of Object.keys(b)) if (typeof b[k] === 'number' && typeof a[k] === 'number') out[k] = a[k] + b[k];
  return {
    ...out,
    n,
    ms: a.ms + b.ms,
    rps: (n / (a.ms + b.ms)) * 1000,
    cpuUs: per('cpuUs'),
    userUs: per('userUs'),
    systemUs: per('systemUs'),
    threadCpuUs: per('threadCpuUs'),
    bytes: per('bytes'),
    gcUs: per('gcUs'),
    firstError: a.firstError ?? b.firstError,
  };
}

/**
 * Runs paired rounds of `names` (each variant twice per round through `runOne(name, round)`, which
 * returns runLoad's result; `combine` joins the two) until `rounds` are kept. `pids()`: this
 * bench's own processes, for the other-work check. Before each round it waits (at most
 * `quietMs`) for other work to drop below 60 % of `otherLimit`, then calls `prime(name)` (unmeasured)
 * for each variant if given. Calls `log(line)` once per round.
 * Returns { rounds: [{ [name]: result, other }], discarded }.
 */
export async function pairedRounds({
  names,
  runOne,
  rounds,
  otherLimit,
  pids,
  log = console.log,
  label = (r) => r.rps.toFixed(0),
  combine = combineRuns,
  quietMs = 10_000,
  prime,
}) {
  const kept = [];
  let discarded = 0;
  const meter = cpuMeter(pids);
  for (let attempt = 0; kept.length < rounds && attempt < 3 * rounds; attempt++) {
    await waitQuiet(pids, { limit: 0.6 * otherLimit, maxMs: quietMs });
    // After the wait, connections may have idled out: reopened here, not in a measured run.
    if (prime) for (const name of names) await prime(name);
    const forward = kept.length % 2 === 0 ? names : [...names].reverse();
    const order = [...forward, ...[...forward].reverse()];
    const round = {};
    let other = 0;
    meter.lap();
    for (const name of order) {
      const result = await runOne(name, kept.length);
      round[name] = round[name] ? combine(round[name], result) : result;
      const o = meter.lap().other;
      if (Number.isFinite(o)) other = Math.max(other, o);
    }
    round.other = other;
    const errors = names.map((k) => (round[k].errors ? `${k}: ${round[k].errors} errors (${round[k].firstError?.message})` : '')).filter(Boolean);
    const line = `${forward.map((k) => `${k} ${label(round[k])}`).join(', ')}; other work up to ${other.toFixed(2)} cores`;
    if (other > otherLimit) {
      discarded++;
      log(`  round thrown away (other work): ${line}`);
      continue;
    }
    kept.push(round);
    log(`  round ${String(kept.length).padStart(2)}: ${line}${errors.length ? `; ${errors.join('; ')}` : ''}`);
  }
  return { rounds: kept, discarded };
}

/** Median and quartiles (linear interpolation between closest ranks). */
export function quartiles(values) {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const at = (p) => {
    if (s.length === 0) return NaN;
    const x = p * (s.length - 1);
    const lo = Math.floor(x);
    const hi = Math.ceil(x);
    return s[lo] + (s[hi] - s[lo]) * (x - lo);
  };
  return { median: at(0.5), q1: at(0.25), q3: at(0.75), n: s.length };
}

/** Per-round difference `f(a) - f(b)` (default: client CPU per request, µs). */
export function pairedDiff(rounds, a, b, f = (r) => r.cpuUs) {
  return quartiles(rounds.map((r) => f(r[a]) - f(r[b])));
}

/** Per-round ratio `f(a) / f(b)` (default: requests per second). */
export function pairedRatio(rounds, a, b, f = (r) => r.rps) {
  return quartiles(rounds.map((r) => f(r[a]) / f(r[b])));
}

/** Median per variant of `f` over the rounds (context, not a comparison). */
export function medianOf(rounds, name, f) {
  return quartiles(rounds.map((r) => f(r[name]))).median;
}

const signed = (v, digits) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(digits)}` : String(v));

/**
 * One line: `what  +5.20 us  IQR +4.70 .. +5.90 (30 rounds)  target <= 4 us  MISS`. `target`
 * optional: { cmp: '<=' | '>=', value }. `sign`: print a + on positive figures (differences).
 */
export function pairedLine(what, stats, unit, { digits = 2, target, sign = true } = {}) {
  const fmt = (v) => (sign ? signed(v, digits) : Number.isFinite(v) ? v.toFixed(digits) : String(v));
  let line = `${what.padEnd(58)} ${fmt(stats.median).padStart(8)} ${unit.padEnd(5)} IQR ${fmt(stats.q1)} .. ${fmt(stats.q3)} (${stats.n} rounds)`;
  if (target) {
    const ok = target.cmp === '<=' ? stats.median <= target.value : stats.median >= target.value;
    line += `  target ${target.cmp} ${target.value} ${unit}  ${ok ? 'PASS' : 'MISS'}`;
  }
  return line;
}
