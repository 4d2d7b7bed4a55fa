import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

/**
 * Builds dist/ when it is older than src/ (scripts/build.mjs: quiet, one build at a time), so
 * tests of the built package never run a stale build, nor rebuild it under another test.
 */
export function ensureBuilt(): void {
  execFileSync(process.execPath, [resolve(root, 'scripts/build.mjs')], { cwd: root, stdio: 'ignore' });
}
