import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from './helpers/built-package.js';
import { withShopPort } from './helpers/shop-port.js';
import { SYSTEM_TOOLS } from './helpers/system-tools.js';

// The README's commands, run as written from the repository root: what a newcomer types first.
// `npm run setup` and `npm test` are not run here (setup reinstalls node_modules under the running
// suite; `npm test` is what runs this file): CI runs them, and this checks that .ci/run runs
// exactly those two.

const root = resolve(import.meta.dirname, '..');
const readme = readFileSync(resolve(root, 'README.md'), 'utf8');

/** The commands of each ```sh block: one a line, comments dropped. */
const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) =>
  m[1]!
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#')),
);
const FIRST = ['npm run setup', 'npm run demo', 'npm test'];

function sh(command: string): string {
  return execFileSync('sh', ['-c', command], { cwd: root, encoding: 'utf8', timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

beforeAll(ensureBuilt, 120_000);

describe('README', () => {
  it('starts with the setup command, the demo and the test command', () => {
    expect(blocks[0]).toEqual(FIRST);
  });

  it('.ci/run runs the setup command on a clean tree, then exactly the test command', () => {
    const lines = readFileSync(resolve(root, '.ci/run'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    const clean = lines.findIndex((l) => l.startsWith('rm -rf node_modules'));
    const setup = lines.findIndex((l) => l.startsWith('npm run setup'));
    const test = lines.indexOf('npm test');
    expect(clean).toBeGreaterThanOrEqual(0);
    expect(setup).toBeGreaterThan(clean);
    expect(test).toBeGreaterThan(setup);
  });

  it('names every system package the tests use, and the setup command installs each', () => {
    const setup = readFileSync(resolve(root, 'scripts/setup.sh'), 'utf8');
    for (const tool of Object.values(SYSTEM_TOOLS)) {
      expect(readme, tool.package).toContain(`\`${tool.package}\``);
      expect(setup, tool.package).toContain(`missing="$missing ${tool.package}"`);
    }
  });

  it('runs the demo quietly; every figure is near the one the configuration promises, shares over the calls they count', async () => {
    const out = await withShopPort(() => sh('npm run demo'));
    // npm's two banner lines and one build line, then the story.
    expect(out.slice(0, out.indexOf('\n== ')).trim().split('\n').length).toBeLessThanOrEqual(4);
    const rows = [...out.matchAll(/^ {3}(.+?)\s+(\d+)\s+([\d.]+)%\s+expected ([\d.]+)%(?:\s+\((.*)\))?$/gm)];
    expect(rows.length).toBe(9); // 5 of the canary, 1 of header routing, 3 of the fault
    for (const [line, , n, shown, expected, why] of rows) {
      expect(Math.abs(Number(shown) - Number(expected)), line).toBeLessThanOrEqual(5);
      // A share stated over some calls is computed over those calls.
      const over = /of [\w' ]*?(\d+) calls/.exec(why ?? '');
      if (over) expect(Number(shown), line).toBeCloseTo((Number(n) / Number(over[1])) * 100, 1);
    }
    const jason503 = rows.find((r) => r[1] === 'jason: HTTP 503');
    expect(jason503?.[5]).toBe("of jason's 200 calls");
    expect(out).toMatch(/served (\S+)\s+expected \1$/m);
    // It ends with the YAML it ran and the next thing to try.
    const end = out.slice(out.indexOf('== what ran'));
    expect(end).toContain('examples/shop/mesh/virtual-services.yaml');
    expect(end).toMatch(/== next\n[\s\S]*npm run demo/);
  }, 180_000);

  it('runs every other command as written, from the repository root', () => {
    const commands = blocks.flat().filter((c) => !FIRST.includes(c));
    expect(commands.length).toBeGreaterThan(0);
    for (const command of commands) {
      let out: string;
      try {
        out = sh(command);
      } catch (error) {
        throw new Error(`README command failed: ${command}\n${String((error as { stderr?: string }).stderr ?? error)}`, { cause: error });
      }
      expect(out.trim(), command).not.toBe('');
    }
  }, 180_000);

  it('names only npm scripts, CLI commands and files that exist', () => {
    const scripts = Object.keys((JSON.parse(readFileSync(resolve(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
    const named = [...readme.matchAll(/npm run ([\w:-]+)/g)].map((m) => m[1]!);
    expect(named.length).toBeGreaterThan(5);
    expect(named.filter((s) => !scripts.includes(s))).toEqual([]);
    const cli = [...readme.matchAll(/npx sidecarless (\w+)/g)].map((m) => m[1]!);
    expect(cli.filter((c) => !['validate', 'explain', 'inspect'].includes(c))).toEqual([]);
    const links = [...readme.matchAll(/\]\(((?:docs|deploy|examples)\/[^)#]+)/g)].map((m) => m[1]!);
    expect(links.filter((l) => !existsSync(resolve(root, l)))).toEqual([]);
  });
});

describe('docs/coming-from-istio.md', () => {
  it('links only to files that exist', () => {
    const page = resolve(root, 'docs/coming-from-istio.md');
    const links = [...readFileSync(page, 'utf8').matchAll(/\]\(([^)#:]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(3);
    expect(links.filter((l) => !existsSync(resolve(dirname(page), l)))).toEqual([]);
  });
});
