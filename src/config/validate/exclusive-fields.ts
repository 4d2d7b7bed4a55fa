import type { SchemaNode } from '../schema/schema-node.js';

/**
 * The groups of mutually exclusive fields of an object schema. Istio writes "at most one of a, b"
 * (a proto `oneof`) as
 * `oneOf: [{not: {anyOf: [{required: [a]}, {required: [b]}]}}, {required: [a]}, {required: [b]}]`,
 * alone or as an `allOf` of several such; no other use of oneOf/anyOf/not occurs in the CRDs, and
 * the generator refuses schemas with one, so anything else here is a bug.
 */
export function exclusiveGroups(node: SchemaNode, where: string): string[][] {
  const groups: string[][] = [];
  if (node.oneOf) groups.push(groupOf(node.oneOf, where));
  else if (node.anyOf || node.not) throw new Error(`${where}: anyOf/not outside Istio's oneOf pattern`);
  for (const sub of node.allOf ?? []) {
    if (!sub.oneOf) throw new Error(`${where}: allOf entry without oneOf`);
    groups.push(groupOf(sub.oneOf, where));
  }
  return groups.filter((g) => g.length > 1);
}

function groupOf(oneOf: readonly SchemaNode[], where: string): string[] {
  const [negation, ...alternatives] = oneOf;
  const names = alternatives.map((alt) => single(alt, where));
  const negated = (negation?.not?.anyOf ?? []).map((alt) => single(alt, where));
  if (names.join('\0') !== negated.join('\0')) throw new Error(`${where}: oneOf is not Istio's "at most one of" pattern`);
  return names;
}

function single(alt: SchemaNode, where: string): string {
  const name = alt.required?.[0];
  if (name === undefined || alt.required?.length !== 1 || Object.keys(alt).length !== 1) {
    throw new Error(`${where}: oneOf alternative is not {required: [field]}`);
  }
  return name;
}
