import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // summary-reporter: the counts scripts/run-tests.mjs and .ci/run print (it.fails counted apart).
    reporters: ['default', 'json', './test/reporters/summary-reporter.ts'],
    outputFile: { json: '.tmp/test-results.json' },
  },
});
