// Builds dist/ quietly when it is older than its sources (src/, tsup.config.ts, package.json,
// tsconfig.json), else does nothing: `npm run demo` and the tests that run the built package call
// it, so a second run starts at once and a build never replaces dist/ under a running test.
// Concurrent callers wait for one another (a lock directory in .tmp/).
//
//   node scripts/build.mjs           build if stale, print one line
//   node scripts/build.mjs --force   always build (what `npm run build` does, through tsup)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUTS = ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/inspect.d.ts', 'dist/inspect.d.cts', 'dist/cli.js'];
const INPUTS = ['src', 'tsup.config.ts', 'package.json', 'tsconfig.json'];
const LOCK = resolve(root, '.tmp/build.lock');
const STALE_LOCK_MS = 5 * 60_000;

function newestInput(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestInput(join(path, entry)));
  return newest;
}

function isFresh() {
  let oldestOutput = Infinity;
  for (const file of OUTPUTS) {
    try {
      oldestOutput = Math.min(oldestOutput, statSync(resolve(root, file)).mtimeMs);
    } catch {
      return false;
    }
  }
  return INPUTS.every((input) => newestInput(resolve(root, input)) <= oldestOutput);
}

async function lock() {
  mkdirSync(dirname(LOCK), { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      return;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // Released meanwhile.
      }
      await sleep(200);
    }
  }
}

/**
 * dist/<entry>.cjs for every entry with CommonJS declarations: `require('sidecarless')` loads the
 * ESM build (tsup.config.ts says why).
 */
function writeCommonJsEntries() {
  const dist = resolve(root, 'dist');
  for (const file of readdirSync(dist)) {
    const entry = /^(.+)\.d\.cts$/.exec(file)?.[1];
    if (!entry || !existsSync(join(dist, `${entry}.js`))) continue;
    writeFileSync(
      join(dist, `${entry}.cjs`),
      `'use strict';\n// The ESM build, required (require(esm)): one copy of the mesh for both module systems.\nmodule.exports = require('./${entry}.js');\n`,
    );
  }
}

const force = process.argv.includes('--force');
if (!force && isFresh()) {
  console.log('dist/ is up to date');
  process.exit(0);
}
await lock();
try {
  if (!force && isFresh()) {
    console.log('dist/ is up to date (built meanwhile)');
  } else {
    const started = performance.now();
    const tsup = resolve(root, 'node_modules/tsup', JSON.parse(readFileSync(resolve(root, 'node_modules/tsup/package.json'), 'utf8')).bin.tsup);
    const result = spawnSync(process.execPath, [tsup, '--silent'], { cwd: root, stdio: 'inherit' });
    if (result.status !== 0) {
      console.error('build failed (tsup, above)');
      process.exitCode = 1;
    } else {
      writeCommonJsEntries();
      console.log(`built dist/ in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
  }
} finally {
  rmSync(LOCK, { recursive: true, force: true });
}
