// Copies the CustomResourceDefinitions sidecarless reads out of Istio's generated CRD file
// (istio/api: kubernetes/customresourcedefinitions.gen.yaml) into schema/istio/, one file per CRD,
// byte for byte, so a later Istio release can be taken in by running this again and `npm run generate`.
//
// Usage: node scripts/import-istio-crds.mjs <path/to/customresourcedefinitions.gen.yaml>
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';

/** CRD names (`plural.group`) kept; EnvoyFilter is kept for its local rate-limit shape only. */
const KEPT = [
  'virtualservices.networking.istio.io',
  'destinationrules.networking.istio.io',
  'serviceentries.networking.istio.io',
  'workloadentries.networking.istio.io',
  'sidecars.networking.istio.io',
  'envoyfilters.networking.istio.io',
  'peerauthentications.security.istio.io',
  'authorizationpolicies.security.istio.io',
  'requestauthentications.security.istio.io',
];

const source = process.argv[2];
if (!source) {
  console.error('usage: node scripts/import-istio-crds.mjs <customresourcedefinitions.gen.yaml>');
  process.exit(2);
}
const text = readFileSync(source, 'utf8');
const header = text.startsWith('#') ? text.slice(0, text.indexOf('\n') + 1) : '';
const outDir = new URL('../schema/istio/', import.meta.url);
const found = new Set();
for (const chunk of text.split(/^---\s*$/m)) {
  const body = chunk.replace(/^#.*\n/, '').trim();
  if (body === '') continue;
  const name = parseDocument(body).toJS()?.metadata?.name;
  if (!KEPT.includes(name)) continue;
  found.add(name);
  writeFileSync(new URL(`${name}.yaml`, outDir), `${header}${body}\n`);
  console.log(`wrote ${fileURLToPath(new URL(`${name}.yaml`, outDir))}`);
}
const missing = KEPT.filter((n) => !found.has(n));
if (missing.length > 0) {
  console.error(`not found in ${source}: ${missing.join(', ')}`);
  process.exit(1);
}
