// Summary of the profiles bench/overhead.mjs writes (PROFILE=cpu,heap): where each variant's client
// CPU and allocations go, per request, by bucket (the mesh's src/ modules through the build's
// source map, undici's own files, Node's internals, OpenTelemetry, the garbage collector, ...), by
// mesh source file and by function, and what the mesh variants spend in undici and Node beyond
// what raw undici.request does. Prints Markdown, so "before" and "after" read the same way.
//
// Run: node bench/lib/profile-summary.mjs [dir] [--top N]   (dir: .tmp/profiles/overhead)
// The directory holds meta.json ({ variants: { name: { requests, cpu: [files], heap: [files],
// cpuUs, threadCpuUs, bytes } } }) and the .cpuprofile / .heapprofile files it names; a variant's
// files (one per chunk) are added up.
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const sourceMaps = new Map();

/** The source map of a built file (dist/index.js), or null when it has none. */
function sourceMapOf(url) {
  if (!sourceMaps.has(url)) {
    let map = null;
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${fileURLToPath(url)}.map`, 'utf8')));
    } catch {
      // no map: the function is named by its place in the built file
    }
    sourceMaps.set(url, map);
  }
  return sourceMaps.get(url);
}

/** Where a frame's code lives: { bucket, file, line } (line 1-based, in the original source). */
function locate(callFrame) {
  const { url, lineNumber, columnNumber, functionName } = callFrame;
  if (url === '') {
    if (functionName === '(garbage collector)') return { bucket: 'V8 garbage collector', file: '', line: 0 };
    if (functionName === '(program)') return { bucket: 'V8 (program)', file: '', line: 0 };
    if (functionName === '(idle)') return { bucket: 'idle', file: '', line: 0 };
    if (functionName === '(root)') return { bucket: 'root', file: '', line: 0 };
    return undefined; // a native function: charged to its caller
  }
  if (url.startsWith('node:')) return { bucket: 'node internals', file: url.slice(5), line: lineNumber + 1 };
  const modules = url.lastIndexOf('/node_modules/');
  if (modules >= 0) {
    const rest = url.slice(modules + 14);
    const parts = rest.split('/');
    const pkg = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
    const bucket = pkg === 'undici' ? 'undici' : pkg.startsWith('@opentelemetry/') ? 'OpenTelemetry' : `package ${pkg}`;
    return { bucket, file: rest, line: lineNumber + 1 };
  }
  if (/\/dist\/[^/]+\.(c?js)$/.test(url)) {
    const entry = sourceMapOf(url)?.findEntry(lineNumber, columnNumber);
    const source = entry?.originalSource;
    if (source) {
      const at = source.lastIndexOf('src/');
      return { bucket: 'mesh', file: at >= 0 ? source.slice(at) : source, line: entry.originalLine + 1 };
    }
    return { bucket: 'mesh', file: `${url.slice(url.lastIndexOf('/dist/') + 1)} (unmapped)`, line: lineNumber + 1 };
  }
  if (url.includes('/bench/')) return { bucket: 'bench harness', file: url.slice(url.lastIndexOf('/bench/') + 1), line: lineNumber + 1 };
  return { bucket: 'other', file: url, line: lineNumber + 1 };
}

/**
 * Self cost per function from a profile's nodes (`cost(node)`), natives charged to their nearest
 * caller with code (named `fn [native]` there). Returns Map key -> { bucket, file, line, name, value }.
 */
function byFunction(nodes, childrenOf, cost) {
  const out = new Map();
  const walk = (node, owner) => {
    const here = locate(node.callFrame);
    const place = here ?? owner ?? { bucket: 'native', file: '', line: 0 };
    const name = (node.callFrame.functionName || '(anonymous)') + (here ? '' : ' [native]');
    const value = cost(node);
    if (value > 0) {
      const key = `${place.bucket}|${place.file}|${here ? place.line : (owner?.line ?? 0)}|${name}`;
      const entry = out.get(key) ?? { bucket: place.bucket, file: place.file, line: here ? place.line : (owner?.line ?? 0), name, value: 0 };
      entry.value += value;
      out.set(key, entry);
    }
    for (const child of childrenOf(node)) walk(child, here && here.file ? here : owner);
  };
  for (const root of nodes) walk(root, undefined);
  return out;
}

/**
 * CPU profile -> per-function self samples. Counted, not weighted by the time between samples: a
 * thread descheduled by other work would otherwise charge the wait to whatever it was doing.
 */
export function cpuFunctions(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1);
  const root = profile.nodes[0];
  return byFunction(
    [root],
    (n) => (n.children ?? []).map((id) => byId.get(id)),
    (n) => self.get(n.id) ?? 0,
  );
}

const notIdle = (f) => f.bucket !== 'idle' && f.bucket !== 'root';

/** Sampling heap profile -> per-function bytes allocated (the profiler's scaled estimate). */
export function heapFunctions(profile) {
  return byFunction(
    [profile.head],
    (n) => n.children ?? [],
    (n) => n.selfSize,
  );
}

/** Per-function figures of several profiles of one variant, added up. */
function mergeFunctions(maps) {
  const out = new Map();
  for (const map of maps) {
    for (const [k, f] of map) {
      const e = out.get(k);
      if (e) e.value += f.value;
      else out.set(k, { ...f });
    }
  }
  return out;
}

const readJson = (dir, file) => JSON.parse(readFileSync(resolve(dir, file), 'utf8'));

function sumBy(functions, keyOf) {
  const out = new Map();
  for (const f of functions.values()) {
    const k = keyOf(f);
    out.set(k, (out.get(k) ?? 0) + f.value);
  }
  return out;
}

const fmt = (v, digits) => (v === undefined || !Number.isFinite(v) ? '' : v.toFixed(digits));
const fmtDiff = (v, digits) => (v === undefined || !Number.isFinite(v) ? '' : `${v >= 0 ? '+' : ''}${v.toFixed(digits)}`);

/** A Markdown table: `rows` of { label, values: Map variant -> number }, then columns a − b. */
function table(title, unit, rows, variants, comparisons, digits) {
  const head = [title, ...variants.map((v) => `${v} (${unit})`), ...comparisons.map(([a, b]) => `${a} − ${b}`)];
  const lines = [`| ${head.join(' | ')} |`, `| --- |${' ---: |'.repeat(head.length - 1)}`];
  for (const r of rows) {
    const cells = [
      r.label,
      ...variants.map((v) => fmt(r.values.get(v), digits)),
      ...comparisons.map(([a, b]) => fmtDiff((r.values.get(a) ?? 0) - (r.values.get(b) ?? 0), digits)),
    ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/**
 * Rows keyed by `keyOf(function)`, scaled per variant by `scale(variant)` (to per request), sorted
 * by `sortKey(values)` descending, first `limit`.
 */
function rowsOf(perVariant, variants, keyOf, { filter = () => true, limit = Infinity, sortKey, scale }) {
  const keys = new Map();
  for (const v of variants) {
    for (const [k, value] of sumBy(new Map([...perVariant.get(v)].filter(([, f]) => filter(f))), keyOf)) {
      if (!keys.has(k)) keys.set(k, new Map());
      keys.get(k).set(v, value * scale(v));
    }
  }
  const rows = [...keys].map(([label, values]) => ({ label, values }));
  rows.sort((a, b) => sortKey(b.values) - sortKey(a.values));
  return rows.slice(0, limit);
}

const fnLabel = (f) => `\`${f.name}\` ${f.file}:${f.line}`;

/** The summary of one profile directory as Markdown lines. */
export function summarise(dir, { top = 25 } = {}) {
  const meta = JSON.parse(readFileSync(resolve(dir, 'meta.json'), 'utf8'));
  const names = Object.keys(meta.variants);
  const requests = (n) => meta.variants[n].requests;
  // raw undici and the bare dispatcher (bench/overhead.mjs FLOOR=1) run no mesh code.
  const withMesh = (n) => n !== 'raw' && n !== 'floor';
  const meshNames = names.filter((n) => n !== 'raw');
  const comparisons = [...meshNames.filter((n) => n !== 'traced' && names.includes('raw')).map((n) => [n, 'raw'])];
  if (names.includes('traced') && names.includes('full')) comparisons.push(['traced', 'full']);
  const out = [
    `Profiles: ${meta.command}`,
    `${meta.machine}`,
    `${names.map((n) => `${n} ${requests(n)}`).join(', ')} requests profiled, ${meta.concurrency} in flight; figures are per request.`,
    '',
  ];
  const bucketOrder = (values) => Math.max(...values.values());

  const cpuNames = names.filter((n) => meta.variants[n].cpu?.length > 0);
  if (cpuNames.length > 0) {
    const cpu = new Map(cpuNames.map((n) => [n, mergeFunctions(meta.variants[n].cpu.map((file) => cpuFunctions(readJson(dir, file))))]));
    // The main thread's CPU time per request of the profiled run, shared out over its busy samples.
    const busySamples = (n) => [...cpu.get(n).values()].filter(notIdle).reduce((a, f) => a + f.value, 0);
    const scales = new Map(cpuNames.map((n) => [n, meta.variants[n].threadCpuUs / busySamples(n)]));
    const scale = (n) => scales.get(n);
    out.push(
      "CPU: the main thread's CPU time per request in each profiled run (process.threadCpuUsage), shared out over its samples that were not idle " +
        '(counted, not weighted by the time between samples, so time descheduled by other work is not charged to the code it interrupted); ' +
        "garbage collection on V8's helper threads is not in it. " +
        `Main thread / whole process (process.cpuUsage) per request under the profiler: ${cpuNames.map((n) => `${n} ${meta.variants[n].threadCpuUs.toFixed(1)} / ${meta.variants[n].cpuUs.toFixed(1)} µs`).join(', ')}; ` +
        `busy samples: ${cpuNames.map((n) => `${n} ${busySamples(n)}`).join(', ')}.`,
      '',
    );
    const rows = rowsOf(cpu, cpuNames, (f) => f.bucket, { sortKey: bucketOrder, scale, filter: notIdle });
    out.push(table('CPU by bucket', 'µs', rows, cpuNames, comparisons, 2), '');
    const meshCpu = cpuNames.filter(withMesh);
    out.push(
      table(
        'mesh CPU by source file',
        'µs',
        rowsOf(cpu, meshCpu, (f) => f.file, { filter: (f) => f.bucket === 'mesh', sortKey: bucketOrder, scale }),
        meshCpu,
        [],
        3,
      ),
      '',
    );
    out.push(
      table(
        `top ${top} mesh functions by self time`,
        'µs',
        rowsOf(cpu, meshCpu, fnLabel, { filter: (f) => f.bucket === 'mesh', sortKey: bucketOrder, scale, limit: top }),
        meshCpu,
        [],
        3,
      ),
      '',
    );
    if (cpuNames.includes('raw')) {
      for (const name of meshCpu.filter((n) => n !== 'traced')) {
        const diff = (values) => (values.get(name) ?? 0) - (values.get('raw') ?? 0);
        out.push(
          table(
            `undici and Node: where ${name} spends more than raw (top 15)`,
            'µs',
            rowsOf(cpu, ['raw', name], (f) => `${fnLabel(f)} (${f.bucket})`, {
              filter: (f) => f.bucket !== 'mesh' && notIdle(f) && f.bucket !== 'bench harness',
              sortKey: diff,
              scale,
              limit: 15,
            }),
            ['raw', name],
            [[name, 'raw']],
            3,
          ),
          '',
        );
      }
    }
    if (cpuNames.includes('traced')) {
      out.push(
        table(
          `top ${top} functions of what tracing adds (traced − full, any bucket)`,
          'µs',
          rowsOf(cpu, ['full', 'traced'], (f) => `${fnLabel(f)} (${f.bucket})`, {
            filter: notIdle,
            sortKey: (v) => (v.get('traced') ?? 0) - (v.get('full') ?? 0),
            scale,
            limit: top,
          }),
          ['full', 'traced'],
          [['traced', 'full']],
          3,
        ),
        '',
      );
    }
  }

  const heapNames = names.filter((n) => meta.variants[n].heap?.length > 0);
  if (heapNames.length > 0) {
    const heap = new Map(heapNames.map((n) => [n, mergeFunctions(meta.variants[n].heap.map((file) => heapFunctions(readJson(dir, file))))]));
    const scale = (n) => 1 / requests(n);
    const total = (n) => [...heap.get(n).values()].reduce((a, f) => a + f.value, 0) / requests(n);
    out.push(
      `Sampled allocation against the heap's growth between collections (v8.GCProfiler) of the same run: ${heapNames.map((n) => `${n} ${total(n).toFixed(0)} / ${meta.variants[n].bytes.toFixed(0)} B`).join(', ')}.`,
      '',
    );
    out.push(
      table(
        'allocation by bucket',
        'B',
        rowsOf(heap, heapNames, (f) => f.bucket, { sortKey: bucketOrder, scale }),
        heapNames,
        comparisons,
        0,
      ),
      '',
    );
    const meshHeap = heapNames.filter(withMesh);
    out.push(
      table(
        `top ${top} mesh allocation sites`,
        'B',
        rowsOf(heap, meshHeap, fnLabel, { filter: (f) => f.bucket === 'mesh', sortKey: bucketOrder, scale, limit: top }),
        meshHeap,
        [],
        0,
      ),
      '',
    );
    if (heapNames.includes('raw')) {
      for (const name of meshHeap.filter((n) => n !== 'traced')) {
        const diff = (values) => (values.get(name) ?? 0) - (values.get('raw') ?? 0);
        out.push(
          table(
            `undici and Node: where ${name} allocates more than raw (top 10)`,
            'B',
            rowsOf(heap, ['raw', name], (f) => `${fnLabel(f)} (${f.bucket})`, {
              filter: (f) => f.bucket !== 'mesh' && f.bucket !== 'bench harness',
              sortKey: diff,
              scale,
              limit: 10,
            }),
            ['raw', name],
            [[name, 'raw']],
            0,
          ),
          '',
        );
      }
    }
  }
  return out;
}

export function printSummary(dir, options) {
  console.log(summarise(dir, options).join('\n'));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const topAt = args.indexOf('--top');
  const top = topAt >= 0 ? Number(args.splice(topAt, 2)[1]) : 25;
  printSummary(resolve(args[0] ?? '.tmp/profiles/overhead'), { top });
}
