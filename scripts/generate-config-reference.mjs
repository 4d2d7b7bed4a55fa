// Generates docs/config-reference.md: every field of every kind sidecarless reads, with its type,
// its support status (src/config/support.ts) and the first sentence of Istio's description.
//
//   node scripts/generate-config-reference.mjs          write the file (npm run docs:reference)
//   node scripts/generate-config-reference.mjs --check  exit 1 if the file is not what would be written
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { importSource } from './lib/import-ts.mjs';
import { GeneratorError, ROOT, nameTypes, strippedKinds, summary } from './lib/istio-crds.mjs';

const OUT = new URL('docs/config-reference.md', ROOT);
/** A repeated subtree with at least this many rows is written once and referred to after. */
const MIN_SHARED_ROWS = 6;

const STATUS_TEXT = { supported: 'supported', 'not-yet': 'not yet', 'not-applicable': 'not applicable' };

function cell(text) {
  return text.replace(/\|/g, '\\|').replace(/\s+/g, ' ').trim();
}

function typeText(node, names) {
  if (node['x-kubernetes-int-or-string']) return 'integer or string';
  if (node.properties) return names.nameOf(node) ?? 'object';
  if (node.type === 'array') return `${typeText(node.items ?? {}, names)}[]`;
  if (node.type === 'object') return node.additionalProperties ? `map<string, ${typeText(node.additionalProperties, names)}>` : 'object';
  if (node.type === 'string') {
    if (node.enum) return `enum: ${node.enum.join(', ')}`;
    if (node['x-sidecarless-duration']) return 'duration';
    if (node['x-sidecarless-re2']) return 'string (RE2 regex)';
    if (node.format === 'byte') return 'bytes (base64)';
    return 'string';
  }
  if (node.type === 'integer') {
    if (node.minimum === 0 && node.maximum === 4294967295) return 'uint32';
    return node.format === 'int32' ? 'int32' : 'integer';
  }
  if (node.type === 'number') return 'number';
  return node.type ?? 'any';
}

/** Rows for `node` at `path` and everything under it; `raw` is the same node with descriptions. */
function rowsFor(kind, node, raw, path, names, fieldSupport) {
  const rows = [];
  const visit = (n, r, p) => {
    const { support, from } = fieldSupport(kind, p);
    const listed = from.replace(/\[\]|\{\}/g, '') === p.replace(/\[\]|\{\}/g, '');
    let note = listed && support.reason ? support.reason : '';
    if (listed && support.values) {
      const values = support.values.supported.map((v) => `\`${v}\``).join(', ');
      note = `${note ? `${note}. ` : ''}Only ${values}; other values: ${STATUS_TEXT[support.values.otherwise]} (${support.values.reason})`;
    }
    rows.push({ path: p, type: typeText(n, names), status: STATUS_TEXT[support.status], note, description: summary(r?.description) });
    const container = n.type === 'array' ? n.items : n;
    const rawContainer = n.type === 'array' ? r?.items : r;
    const suffix = n.type === 'array' ? '[]' : '';
    if (container?.properties) {
      for (const [name, child] of Object.entries(container.properties)) {
        visit(child, rawContainer?.properties?.[name], `${p}${suffix}.${name}`);
      }
    } else if (container?.additionalProperties?.properties) {
      const value = container.additionalProperties;
      for (const [name, child] of Object.entries(value.properties)) {
        visit(child, rawContainer?.additionalProperties?.properties?.[name], `${p}${suffix}{}.${name}`);
      }
    }
  };
  visit(node, raw, path);
  return rows;
}

/**
 * Collapses repeated subtrees (same fields, types and statuses): the shallowest copy is written out,
 * the others become one row pointing at it.
 */
function collapse(rows) {
  const isUnder = (row, parent) => ['.', '[]', '{}'].some((sep) => row.path.startsWith(`${parent.path}${sep}`));
  const candidates = [];
  rows.forEach((row, i) => {
    let end = i + 1;
    while (end < rows.length && isUnder(rows[end], row)) end++;
    if (end - i - 1 < MIN_SHARED_ROWS) return;
    const children = rows.slice(i + 1, end).map((c) => [c.path.slice(row.path.length), c.type, c.status, c.note]);
    candidates.push({ i, end, depth: row.path.split(/\.|\[\]|\{\}/).length, signature: JSON.stringify([row.type, ...children]) });
  });
  candidates.sort((a, b) => a.depth - b.depth || a.i - b.i);
  const canonical = new Map(); // signature -> path
  const hidden = new Set();
  const pointer = new Map(); // row index -> canonical path
  for (const c of candidates) {
    if (hidden.has(c.i)) continue;
    const first = canonical.get(c.signature);
    if (first === undefined) {
      canonical.set(c.signature, rows[c.i].path);
      continue;
    }
    pointer.set(c.i, first);
    for (let j = c.i + 1; j < c.end; j++) hidden.add(j);
  }
  return rows.flatMap((row, i) => {
    if (hidden.has(i)) return [];
    const first = pointer.get(i);
    return first ? [{ ...row, note: `${row.note ? `${row.note}. ` : ''}Same fields as \`${first}\`` }] : [row];
  });
}

function checkSupportTable(kinds, FIELD_SUPPORT) {
  const problems = [];
  for (const k of kinds) {
    const paths = new Set();
    const visit = (n, p) => {
      paths.add(p.replace(/\[\]|\{\}/g, ''));
      const c = n.type === 'array' ? n.items : n;
      for (const [name, child] of Object.entries(c?.properties ?? {})) visit(child, `${p}.${name}`);
      for (const [name, child] of Object.entries(c?.additionalProperties?.properties ?? {})) visit(child, `${p}.${name}`);
    };
    visit(k.versions.find((v) => v.name === k.storageVersion).schema, 'spec');
    for (const pattern of Object.keys(FIELD_SUPPORT[k.kind] ?? {})) {
      if (!paths.has(pattern.replace(/\[\]|\{\}/g, ''))) problems.push(`${k.kind} ${pattern}`);
    }
  }
  if (problems.length > 0) {
    throw new GeneratorError(`src/config/support.ts lists fields the schema does not have:\n  ${problems.join('\n  ')}`);
  }
}

function render(kinds, names, support) {
  const { UNREAD_ISTIO_KINDS, fieldSupport } = support;
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated by scripts/generate-config-reference.mjs from schema/istio/, deploy/crds/ and src/config/support.ts.',
    '     Do not edit; run `npm run docs:reference`. -->',
    '',
    'sidecarless reads these Istio resources and validates them against the CRD schemas of the Istio',
    'release in `schema/istio/` (types, enums, ranges, required fields, mutually exclusive fields, the',
    'CEL rules of `x-kubernetes-validations`, durations in Go syntax, RE2 regexes). Its own kind,',
    "RateLimitPolicy, is validated the same way against the CRD it ships in `deploy/crds/`. A field's",
    'status says what sidecarless does with it:',
    '',
    '- **supported**: it has its Istio meaning.',
    '- **not yet**: accepted and validated, but without effect for now; every use is reported as a',
    '  `not-implemented` warning naming the field.',
    '- **not applicable**: it configures something that exists only for an Envoy proxy, a gateway or',
    '  traffic capture, so an in-process mesh never implements it; every use is reported as a',
    '  `not-applicable` warning.',
    '',
    'A field without a note has the status of its parent. In paths, `[]` marks the items of a list and',
    '`{}` the values of a map. Descriptions are the first sentence of the Istio reference',
    '(https://istio.io/latest/docs/reference/config/).',
    '',
    '## Kinds',
    '',
    '| kind | apiVersion |',
    '| --- | --- |',
  ];
  for (const k of kinds) {
    lines.push(`| [${k.kind}](#${k.kind.toLowerCase()}) | ${k.versions.map((v) => `\`${k.group}/${v.name}\``).join(', ')} |`);
  }
  lines.push('| [HTTPRoute](#httproute) | `gateway.networking.k8s.io/v1`, `gateway.networking.k8s.io/v1beta1` |');
  lines.push('| [GRPCRoute](#grpcroute) | `gateway.networking.k8s.io/v1` |');
  lines.push('', 'Istio kinds sidecarless does not read are reported with a warning and otherwise ignored:', '');
  lines.push('| kind | group | status | why |', '| --- | --- | --- | --- |');
  for (const [kind, s] of Object.entries(UNREAD_ISTIO_KINDS)) {
    lines.push(`| ${kind} | \`${s.group}\` | ${STATUS_TEXT[s.status]} | ${cell(s.reason)} |`);
  }
  lines.push('', 'Other Kubernetes kinds (Service, Deployment, ConfigMap, ...) are ignored with a warning.', '');
  for (const k of kinds) {
    const version = k.versions.find((v) => v.name === k.storageVersion);
    const identical = k.versions.every((v) => JSON.stringify(v.schema) === JSON.stringify(version.schema));
    lines.push(`## ${k.kind}`, '');
    lines.push(
      `\`${k.group}\`, versions ${k.versions.map((v) => `\`${v.name}\``).join(', ')}${identical ? ' (identical schemas)' : ''}. Fields of \`${k.storageVersion}\`:`,
      '',
    );
    lines.push('| field | type | status | note | description |', '| --- | --- | --- | --- | --- |');
    const rows = collapse(rowsFor(k.kind, version.schema, k.raw.spec, 'spec', names, fieldSupport));
    for (const row of rows) {
      lines.push(`| \`${row.path}\` | ${cell(row.type)} | ${row.status} | ${cell(row.note)} | ${cell(row.description)} |`);
    }
    lines.push('');
  }
  for (const [kind, fields] of Object.entries(support.GATEWAY_ROUTE_FIELDS)) {
    lines.push(`## ${kind}`, '');
    lines.push(
      `\`gateway.networking.k8s.io\`, the Gateway API, read for the mesh when a parent is a Service (GAMMA), and turned into route tables as istiod turns it into VirtualServices. Validated against the Gateway API v1.6.1 CRD (\`schema/gateway-api/\`: its schema and CEL rules, with the CRD defaults applied), each problem named with its field path. Fields not listed are supported as the Gateway API specifies them, or warned about.`,
      '',
    );
    lines.push('| field | type | status | note |', '| --- | --- | --- | --- |');
    for (const f of fields) lines.push(`| \`${f.path}\` | ${cell(f.type)} | ${STATUS_TEXT[f.status]} | ${cell(f.note)} |`);
    lines.push('');
  }
  return lines.join('\n');
}

async function main() {
  const check = process.argv.includes('--check');
  const { SCHEMA_KINDS } = await importSource('src/config/resource.ts');
  const support = await importSource('src/config/support.ts');
  const kinds = strippedKinds(SCHEMA_KINDS);
  checkSupportTable(kinds, support.FIELD_SUPPORT);
  const text = render(kinds, nameTypes(kinds), support);
  let current;
  try {
    current = readFileSync(OUT, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === text) return;
  if (check) {
    console.error(`${fileURLToPath(OUT)} is stale; run \`npm run docs:reference\``);
    process.exit(1);
  }
  writeFileSync(OUT, text);
  console.log(`wrote ${fileURLToPath(OUT)}`);
}

main().catch((error) => {
  if (error instanceof GeneratorError) {
    console.error(`generate-config-reference: ${error.message}`);
    process.exit(1);
  }
  throw error;
});
