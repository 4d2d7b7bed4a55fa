// Shared helpers of the data-path benchmarks: machine line, statistics, result rows, the backend
// pods child process. Nothing here talks to anything but loopback addresses.
import { fork } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';

/** One line naming the machine, Node and the date; the load average tells if it was busy. */
export function machineLine(name) {
  const cpu = cpus();
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return (
    `${name}: ${cpu[0]?.model ?? 'unknown cpu'}, ${cpu.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, ` +
    `node ${process.version}, ${new Date().toISOString()}, load average ${load}`
  );
}

export function loadLine() {
  return `load average at the end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};

/** Percentile (0..100) of an already sorted array, nearest rank. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function sortedCopy(values) {
  const a = Float64Array.from(values);
  a.sort();
  return a;
}

/** A result row: `what  value unit  target  ok/MISSED`. `cmp` is '<=' or '>='. */
export function row(what, value, unit, cmp, target, digits = 2) {
  const ok = cmp === '<=' ? value <= target : value >= target;
  const v = Number.isFinite(value) ? value.toFixed(digits) : String(value);
  return `${what.padEnd(52)} ${v.padStart(10)} ${unit.padEnd(5)} target ${cmp} ${target} ${unit}  ${ok ? 'ok' : 'MISSED'}`;
}

/** A figure without a target (context). */
export function info(what, value, unit, digits = 2) {
  const v = Number.isFinite(value) ? value.toFixed(digits) : String(value);
  return `${what.padEnd(52)} ${v.padStart(10)} ${unit}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** 127.0.0.2, 127.0.0.3, ... */
export const podAddresses = (n, first = 2) => Array.from({ length: n }, (_, i) => `127.0.0.${first + i}`);

/**
 * Starts the backend pods in a child process (so the client process measures only the client):
 * one node:http server per loopback address, all on one port. Returns a handle to talk to it.
 * `options`: { addresses, bodySize, serviceMs, workers, jitter, warm }; see pods-process.mjs.
 */
export async function startPods(options) {
  const child = fork(fileURLToPath(new URL('./pods-process.mjs', import.meta.url)), [JSON.stringify(options)], {
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map();
  let seq = 0;
  const ready = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`pods process exited with ${code}`)));
    child.on('message', (m) => {
      if (m.type === 'ready') resolve(m.port);
      else if (m.id !== undefined && pending.has(m.id)) {
        pending.get(m.id)(m);
        pending.delete(m.id);
      }
    });
  });
  const timeout = setTimeout(() => child.kill(), 30_000);
  const port = await ready.finally(() => clearTimeout(timeout));
  child.removeAllListeners('exit');
  const ask = (message) =>
    new Promise((resolve) => {
      const id = ++seq;
      pending.set(id, resolve);
      child.send({ ...message, id });
    });
  return {
    port,
    pid: child.pid,
    /** Makes pod `index` `factor` times slower (1 = normal again). */
    setSlow: (index, factor) => ask({ type: 'slow', index, factor }),
    /** Makes pod `index` answer every request with `status` (0 = serve normally again). */
    setFailing: (index, status) => ask({ type: 'fail', index, status }),
    stats: () => ask({ type: 'stats' }),
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3_000)]);
    },
  };
}

/** Kills child processes we started when the bench is interrupted. */
export function onExit(fn) {
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    try {
      fn();
    } catch {
      // best effort
    }
  };
  process.once('exit', run);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      run();
      process.exit(130);
    });
  }
}

/** A watchdog: the bench stops by itself even if something hangs. */
export function watchdog(ms, name) {
  const t = setTimeout(() => {
    console.error(`${name}: still running after ${Math.round(ms / 1000)} s, giving up`);
    process.exit(2);
  }, ms);
  t.unref();
  return t;
}

/**
 * CPU use of the whole machine and of the bench's own processes between two calls, from
 * /proc: tells whether other work ran beside a measurement ('other' in cores, 0 = none).
 * Returns undefined figures where /proc is not there.
 */
export function cpuMeter(pids) {
  const tick = 100; // USER_HZ on Linux
  const total = () => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      const idle = f[3] + (f[4] ?? 0);
      return f.reduce((a, b) => a + b, 0) - idle;
    } catch {
      return NaN;
    }
  };
  const own = () => {
    let sum = 0;
    for (const pid of pids()) {
      try {
        const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
        sum += Number(f[11]) + Number(f[12]); // utime, stime
      } catch {
        // gone
      }
    }
    return sum;
  };
  let t0 = total();
  let o0 = own();
  let w0 = performance.now();
  return {
    /** Cores busy since the last call: { all, ours, other }. */
    lap() {
      const t1 = total();
      const o1 = own();
      const w1 = performance.now();
      const secs = (w1 - w0) / 1000;
      const all = (t1 - t0) / tick / secs;
      const ours = (o1 - o0) / tick / secs;
      t0 = t1;
      o0 = o1;
      w0 = w1;
      return { all, ours, other: Math.max(0, all - ours) };
    },
  };
}

/** Cores used by processes other than `pids()` over `ms` (0 when unknown). */
export async function otherCores(pids, ms = 500) {
  const meter = cpuMeter(pids);
  await sleep(ms);
  const { other } = meter.lap();
  return Number.isFinite(other) ? other : 0;
}

/**
 * Waits (at most `maxMs`) until other processes use less than `limit` cores: the project's other
 * work (test runs) shares this machine. Returns the last reading.
 */
export async function waitQuiet(pids, { limit = 0.15, maxMs = 20_000 } = {}) {
  const until = performance.now() + maxMs;
  let other = await otherCores(pids);
  while (other >= limit && performance.now() < until) other = await otherCores(pids);
  return other;
}
