import * as k8s from '@kubernetes/client-node';

/** One field of a generated client model: its JSON name and OpenAPI-derived type. */
interface Attribute {
  readonly baseName: string;
  readonly type: string;
}

type ModelClass = { readonly attributeTypeMap?: readonly Attribute[] };

const models = k8s as unknown as Record<string, ModelClass | undefined>;

/** The client's model class name for an apiVersion and kind: `apps/v1` Deployment → `V1Deployment`. */
export function modelName(apiVersion: string, kind: string): string {
  const version = apiVersion.split('/').pop() ?? apiVersion;
  return `${version[0]!.toUpperCase()}${version.slice(1)}${kind}`;
}

export function hasModel(apiVersion: string, kind: string): boolean {
  return models[modelName(apiVersion, kind)]?.attributeTypeMap !== undefined;
}

/**
 * Checks an object strictly against the OpenAPI types `@kubernetes/client-node` is generated from
 * (the types the mesh itself uses): every field must exist in the schema (as `kubectl apply
 * --validate=strict` requires) and have the schema's type. Returns the problems, each with its
 * field path; an empty list when the object conforms.
 */
export function strictOpenApiProblems(object: unknown, apiVersion: string, kind: string): string[] {
  const problems: string[] = [];
  check(object, modelName(apiVersion, kind), '', problems);
  return problems;
}

function check(value: unknown, type: string, path: string, problems: string[]): void {
  const at = path || '(root)';
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return void problems.push(`${at}: expected a list`);
    value.forEach((item, i) => check(item, array[1]!, `${path}[${i}]`, problems));
  } else if (map) {
    if (typeof value !== 'object' || Array.isArray(value)) return void problems.push(`${at}: expected a map`);
    for (const [key, item] of Object.entries(value)) check(item, map[1]!, `${path}.${key}`, problems);
  } else if (type === 'string' || type === 'Date') {
    if (typeof value !== 'string') problems.push(`${at}: expected a string, got ${JSON.stringify(value)}`);
  } else if (type === 'number') {
    if (typeof value !== 'number') problems.push(`${at}: expected a number, got ${JSON.stringify(value)}`);
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') problems.push(`${at}: expected a boolean, got ${JSON.stringify(value)}`);
  } else if (type === 'IntOrString') {
    if (typeof value !== 'string' && typeof value !== 'number') problems.push(`${at}: expected an integer or a string`);
  } else if (type !== 'any' && type !== 'object') {
    const attributes = models[type]?.attributeTypeMap;
    if (!attributes) return void problems.push(`${at}: no schema for type ${type}`);
    if (typeof value !== 'object' || Array.isArray(value)) return void problems.push(`${at}: expected an object (${type})`);
    const fields = new Map(attributes.map((a) => [a.baseName, a.type]));
    for (const [key, item] of Object.entries(value)) {
      const fieldType = fields.get(key);
      if (fieldType === undefined) problems.push(`${path ? `${path}.` : ''}${key}: unknown field in ${type}`);
      else check(item, fieldType, path ? `${path}.${key}` : key, problems);
    }
  }
}
