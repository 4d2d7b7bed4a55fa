// ESLint rule `arrows/allowed-imports`: an import from one part of src/ into another must be an
// arrow of scripts/lint/architecture.js, and nothing imports an entry point.
import { dirname, relative, resolve, sep } from 'node:path';
import { ALLOWED_IMPORTS, ENTRY_POINTS, PACKAGE_USERS } from './architecture.js';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const src = resolve(root, 'src');
const entries = new Set(ENTRY_POINTS.map((p) => resolve(root, p)));

/** The pairs of parts the table lets import each other: refused, so that every arrow points one way. */
function twoWayPairs(table) {
  const pairs = [];
  for (const [from, allowed] of Object.entries(table)) {
    if (allowed === '*') continue;
    for (const to of allowed) {
      const back = table[to];
      if (from < to && Array.isArray(back) && back.includes(from)) pairs.push(`${from} <-> ${to}`);
    }
  }
  return pairs;
}

const pairs = twoWayPairs(ALLOWED_IMPORTS);
if (pairs.length > 0) {
  throw new Error(`scripts/lint/architecture.js lets parts import each other (${pairs.join(', ')}): arrows point one way, see docs/architecture.md`);
}

/** The part of src/ a path belongs to, or undefined outside src/. */
function partOf(file) {
  const rel = relative(src, file);
  if (rel.startsWith('..')) return undefined;
  const first = rel.split(sep)[0];
  return first.replace(/\.(ts|js)$/, '');
}

const rule = {
  meta: {
    type: 'problem',
    docs: { description: 'imports follow the arrows of docs/architecture.md' },
    messages: {
      arrow: "src/{{from}} may not import src/{{to}} ('{{spec}}'): not an arrow of scripts/lint/architecture.js (docs/architecture.md)",
      unknown: 'src/{{from}} is not a part listed in scripts/lint/architecture.js: add it with the parts it may import',
      entry: "'{{spec}}' is an entry point of the package: import the module it re-exports instead",
      package: "src/{{from}} may not import '{{spec}}': only {{users}} may (PACKAGE_USERS in scripts/lint/architecture.js)",
    },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const from = partOf(file);
    if (from === undefined) return {};
    const check = (node, spec) => {
      if (typeof spec !== 'string') return;
      if (!spec.startsWith('.')) {
        const users = PACKAGE_USERS[spec.split('/')[0]];
        if (users && !users.includes(from)) context.report({ node, messageId: 'package', data: { from, spec, users: users.join(', ') } });
        return;
      }
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (entries.has(target) && target !== file) {
        context.report({ node, messageId: 'entry', data: { spec } });
        return;
      }
      const to = partOf(target);
      if (to === undefined || to === from) return;
      const allowed = ALLOWED_IMPORTS[from];
      if (allowed === undefined) context.report({ node, messageId: 'unknown', data: { from } });
      else if (allowed !== '*' && !allowed.includes(to)) context.report({ node, messageId: 'arrow', data: { from, to, spec } });
    };
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) => node.source.type === 'Literal' && check(node.source, node.source.value),
    };
  },
};

export default { rules: { 'allowed-imports': rule } };
