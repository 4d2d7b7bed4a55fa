// The vitest suite on every Node the package supports: 24 (devDependency `node`) and the oldest 22
// it allows, 22.19.0 (devDependency `node22`). vitest's forked workers run on the Node that runs
// vitest (process.execPath), so each run tests the library on that Node. Runs one after the other
// (the suite is not light), writes the combined counts to .tmp/test-summary.json for .ci/run and
// exits non-zero when anything failed.
//
//   node scripts/run-tests.mjs                  both Nodes, whole suite
//   node scripts/run-tests.mjs --node=22 test/http/routing.test.ts   one Node, vitest's own filters
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RUNTIMES = [
  { name: '24', binary: 'node_modules/node/bin/node' },
  { name: '22', binary: 'node_modules/node22/bin/node' },
];

const args = process.argv.slice(2);
const only = args.find((a) => a.startsWith('--node='))?.slice('--node='.length);
const vitestArgs = args.filter((a) => !a.startsWith('--node='));
const runtimes = RUNTIMES.filter((r) => only === undefined || r.name === only);
if (runtimes.length === 0) {
  console.error(`run-tests: --node must be one of ${RUNTIMES.map((r) => r.name).join(', ')}`);
  process.exit(2);
}

mkdirSync(resolve(root, '.tmp'), { recursive: true });
const runs = [];
for (const runtime of runtimes) {
  const binary = resolve(root, runtime.binary);
  if (!existsSync(binary)) {
    console.error(`run-tests: ${runtime.binary} is missing: run the setup command (npm run setup)`);
    runs.push({ runtime: runtime.name, node: '?', passed: 0, expectedToFail: [], failed: 1, skipped: 0, failures: [`${runtime.binary} missing`] });
    continue;
  }
  const summaryFile = resolve(root, `.tmp/test-summary-node${runtime.name}.json`);
  rmSync(summaryFile, { force: true });
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' }).stdout.trim();
  console.log(`\n=== vitest on Node ${version} (${runtime.binary})\n`);
  const result = spawnSync(
    binary,
    [resolve(root, 'node_modules/vitest/vitest.mjs'), 'run', `--outputFile.json=.tmp/test-results-node${runtime.name}.json`, ...vitestArgs],
    { cwd: root, stdio: 'inherit', env: { ...process.env, SIDECARLESS_TEST_SUMMARY: summaryFile } },
  );
  let summary;
  try {
    summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
  } catch {
    // vitest ended before reporting (a crash, a bad filter): one failure, whatever it was.
    summary = {
      node: version,
      passed: 0,
      expectedToFail: [],
      failed: 1,
      skipped: 0,
      failures: [`vitest exited ${result.status ?? result.signal} without a report`],
    };
  }
  if (result.status !== 0 && summary.failed === 0) {
    summary = { ...summary, failed: 1, failures: [`vitest exited ${result.status ?? result.signal}`] };
  }
  runs.push({ runtime: runtime.name, ...summary });
}

const total = {
  passed: runs.reduce((n, r) => n + r.passed, 0),
  failed: runs.reduce((n, r) => n + r.failed, 0),
  skipped: runs.reduce((n, r) => n + r.skipped, 0),
  expectedToFail: runs.flatMap((r) => r.expectedToFail.map((name) => `${name} (Node ${r.runtime})`)),
  runs,
};
writeFileSync(resolve(root, '.tmp/test-summary.json'), JSON.stringify(total, null, 2) + '\n');

console.log('');
for (const r of runs) {
  console.log(`Node ${r.node}: ${r.passed} passed, ${r.expectedToFail.length} expected to fail, ${r.failed} failed, ${r.skipped} skipped`);
  for (const f of r.failures) console.log(`  failed: ${f}`);
}
const unique = [...new Set(runs.flatMap((r) => r.expectedToFail))];
for (const name of unique) console.log(`  expected to fail (it.fails; the test's comment says why): ${name}`);
process.exit(total.failed > 0 ? 1 : 0);
