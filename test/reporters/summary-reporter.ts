import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Reporter, SerializedError, TestModule, TestSuite } from 'vitest/node';

/** What one vitest run gives `scripts/run-tests.mjs` (and through it `.ci/run`). */
export interface RunSummary {
  readonly node: string;
  /** Tests that passed, not counting those marked `it.fails`. */
  readonly passed: number;
  /** Tests marked `it.fails` whose body failed, as expected: a missing feature, not a pass. */
  readonly expectedToFail: readonly string[];
  /** Failed tests, plus every suite, file or run error no test carries (a missing server, say). */
  readonly failed: number;
  readonly skipped: number;
  readonly failures: readonly string[];
}

/**
 * Counts what a run really shows: vitest reports a test marked `it.fails` as passed when its body
 * fails, and a file that fails to load or whose `beforeAll` throws as no failed test at all.
 * Writes the counts to `$SIDECARLESS_TEST_SUMMARY` (default `.tmp/test-summary.json`).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let skipped = 0;
    const expectedToFail: string[] = [];
    const failures: string[] = [];
    for (const module of modules) {
      for (const error of module.errors()) failures.push(`${module.relativeModuleId}: ${error.message}`);
      for (const suite of module.children.allSuites()) {
        for (const error of suiteErrors(suite)) failures.push(`${module.relativeModuleId} > ${suite.fullName}: ${error}`);
      }
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        const name = `${module.relativeModuleId} > ${test.fullName}`;
        if (state === 'failed') failures.push(name);
        else if (state === 'skipped' || state === 'pending') skipped++;
        else if (test.options.fails) expectedToFail.push(name);
        else passed++;
      }
    }
    for (const error of unhandledErrors) failures.push(`unhandled: ${error.message}`);
    const summary: RunSummary = { node: process.version, passed, expectedToFail, failed: failures.length, skipped, failures };
    const file = resolve(process.env.SIDECARLESS_TEST_SUMMARY ?? '.tmp/test-summary.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(summary, null, 2) + '\n');
  }
}

/** A suite's own errors (a failing beforeAll/afterAll), which vitest keeps on the suite, not on a test. */
function suiteErrors(suite: TestSuite): string[] {
  return suite.errors().map((e) => e.message);
}
