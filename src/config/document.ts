import type { SourceLocation } from '../issue.js';

/** A field path: property names and array indexes from the document root. */
export type FieldPath = readonly (string | number)[];

/**
 * One parsed, not yet validated object as a source delivered it: a YAML/JSON document, one item of a
 * `kind: List`, an inline object, or an object from the Kubernetes API.
 */
export interface RawDocument {
  /** The plain object (JSON data model). */
  readonly value: unknown;
  /** Where the document starts. */
  readonly location: SourceLocation;
  /** Where a field inside the document is, when the source knows (YAML/JSON text does). */
  locate?(path: FieldPath): SourceLocation | undefined;
}

/** Renders `['spec', 'http', 0, 'match']` as `spec.http[0].match`. */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}
