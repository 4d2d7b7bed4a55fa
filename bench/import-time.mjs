// bench/import-time: how long `import('sidecarless')` takes beside `import('undici')` (which it
// imports), each in a fresh child process, alternating so that both see the same machine load.
// Wall time and the process's CPU time (user + system) around the import() are both measured: on a
// shared machine the CPU time moves less. Prints medians and the ratio ours/undici. Target: at
// most 1.3x.
// Then, for what an application pays before its first request, the import and a first mesh from
// files (examples/shop/mesh, created and closed), beside the baseline build when one is given.
// Run: npm run bench:import   (builds first)
//   ROUNDS=30                             more rounds (default 20)
//   BASELINE=.tmp/dist-before/index.js    also an older build (inside the repository, so that its
//                                         imports resolve), in the same rounds
import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const ROUNDS = Number(process.env.ROUNDS ?? 20);
const variants = [
  { name: "import('undici')", specifier: 'undici' },
  { name: "import('sidecarless')", specifier: pathToFileURL(resolve(root, 'dist/index.js')).href },
  ...(process.env.BASELINE ? [{ name: 'baseline build', specifier: pathToFileURL(resolve(root, process.env.BASELINE)).href }] : []),
];

const shop = resolve(root, 'examples/shop/mesh');
function importCost(specifier, withMesh = false) {
  const mesh = withMesh
    ? `const mesh = await m.createMesh({ namespace: 'shop', config: [${JSON.stringify(shop)}], watch: false, dns: false }); await mesh.close();`
    : '';
  const code = `const cpu = process.cpuUsage(); const t = performance.now(); const m = await import(${JSON.stringify(specifier)}); ${mesh}
const wall = performance.now() - t; const used = process.cpuUsage(cpu);
process.stdout.write(JSON.stringify({ wall, cpu: (used.user + used.system) / 1000 }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root, encoding: 'utf8' }));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// One warm-up each: the first spawn pays for the file system cache.
for (const v of variants) importCost(v.specifier);
const samples = variants.map(() => []);
for (let i = 0; i < ROUNDS; i++) variants.forEach((v, k) => samples[k].push(importCost(v.specifier)));

const stats = samples.map((s) => ({ wall: median(s.map((x) => x.wall)), cpu: median(s.map((x) => x.cpu)) }));
console.log(`node ${process.version}, ${ROUNDS} fresh processes each, alternating`);
console.log(`${''.padEnd(24)}${'wall (median)'.padStart(15)}${'cpu (median)'.padStart(15)}`);
variants.forEach((v, k) => {
  const ratio = k === 0 ? '' : `   ours/undici: ${(stats[k].wall / stats[0].wall).toFixed(2)}x wall, ${(stats[k].cpu / stats[0].cpu).toFixed(2)}x cpu`;
  console.log(`${v.name.padEnd(24)}${`${stats[k].wall.toFixed(1)} ms`.padStart(15)}${`${stats[k].cpu.toFixed(1)} ms`.padStart(15)}${ratio}`);
});
const worst = Math.max(stats[1].wall / stats[0].wall, stats[1].cpu / stats[0].cpu);
console.log(`target <= 1.30x: ${worst <= 1.3 ? 'met' : 'MISSED'} (worse of the two ratios: ${worst.toFixed(2)}x)`);

// The first mesh: the import plus createMesh, i.e. the code that import no longer loads.
const meshVariants = variants.slice(1);
const meshSamples = meshVariants.map(() => []);
for (let i = 0; i < Math.ceil(ROUNDS / 2); i++) meshVariants.forEach((v, k) => meshSamples[k].push(importCost(v.specifier, true)));
console.log(`\nimport + first createMesh (examples/shop/mesh), ${Math.ceil(ROUNDS / 2)} fresh processes each`);
meshVariants.forEach((v, k) => {
  const wall = median(meshSamples[k].map((x) => x.wall));
  const cpu = median(meshSamples[k].map((x) => x.cpu));
  console.log(`${v.name.padEnd(24)}${`${wall.toFixed(1)} ms`.padStart(15)}${`${cpu.toFixed(1)} ms`.padStart(15)}`);
});
