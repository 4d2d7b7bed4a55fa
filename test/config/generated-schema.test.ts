import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));

function run(script: string): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [script, '--check'], { cwd: root, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('generated schema files', () => {
  it('match the CRDs in schema/istio/ (else run `npm run generate`)', () => {
    const { status, output } = run('scripts/generate-schema.mjs');
    expect(output).toBe('');
    expect(status).toBe(0);
  });
});
