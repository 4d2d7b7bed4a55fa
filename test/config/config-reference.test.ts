import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SCHEMA_KINDS } from '../../src/config/resource.js';
import type { SchemaNode } from '../../src/config/schema/index.js';
import { KIND_SCHEMAS } from '../../src/config/schema/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

/** Every field path of a schema, as the reference writes them (`[]` list items, `{}` map values). */
function fieldPaths(node: SchemaNode, path: string, out: string[]): string[] {
  out.push(path);
  const container = node.type === 'array' ? node.items : node;
  const suffix = node.type === 'array' ? '[]' : '';
  for (const [name, child] of Object.entries(container?.properties ?? {})) fieldPaths(child, `${path}${suffix}.${name}`, out);
  for (const [name, child] of Object.entries(container?.additionalProperties?.properties ?? {})) {
    fieldPaths(child, `${path}${suffix}{}.${name}`, out);
  }
  return out;
}

/** The reference's tables: kind -> field path -> its note. */
function documentedFields(text: string): Map<string, Map<string, string>> {
  const byKind = new Map<string, Map<string, string>>();
  let rows: Map<string, string> | undefined;
  for (const line of text.split('\n')) {
    const heading = /^## (\w+)$/.exec(line);
    if (heading) {
      rows = new Map();
      byKind.set(heading[1] as string, rows);
      continue;
    }
    const row = /^\| `([^`]+)` \|[^|]*\|[^|]*\| (.*?) \|/.exec(line);
    if (row && rows) rows.set(row[1] as string, row[2] as string);
  }
  return byKind;
}

/**
 * A repeated subtree is written once and its other copies point at it ("Same fields as `x`"): a
 * field under such a row is documented if its twin under `x` is.
 */
function isDocumented(rows: Map<string, string>, path: string, depth: number): boolean {
  if (rows.has(path)) return true;
  if (depth > 5) return false;
  for (const [row, note] of rows) {
    const twin = /Same fields as `([^`]+)`/.exec(note)?.[1];
    const under = ['.', '[]', '{}'].some((sep) => path.startsWith(`${row}${sep}`));
    if (twin && under && isDocumented(rows, twin + path.slice(row.length), depth + 1)) return true;
  }
  return false;
}

describe('docs/config-reference.md', () => {
  it('is what the schema and the support table produce (else run `npm run docs:reference`)', () => {
    const result = spawnSync(process.execPath, ['scripts/generate-config-reference.mjs', '--check'], { cwd: root, encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.status).toBe(0);
  });

  it('documents every field of every kind', () => {
    const documented = documentedFields(readFileSync(new URL('docs/config-reference.md', `file://${root}`), 'utf8'));
    const missing: string[] = [];
    for (const kind of SCHEMA_KINDS) {
      const rows = documented.get(kind) ?? new Map<string, string>();
      const schema = KIND_SCHEMAS[kind].versions[KIND_SCHEMAS[kind].storageVersion] as SchemaNode;
      for (const path of fieldPaths(schema, 'spec', [])) {
        if (!isDocumented(rows, path, 0)) missing.push(`${kind} ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });
});
