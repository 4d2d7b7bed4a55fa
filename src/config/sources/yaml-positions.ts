import { isAlias, isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Pair, YAMLMap } from 'yaml';
import { parseGoYamlDocuments, streamGoYamlDocuments } from './go-yaml.js';
import type { FieldPath } from '../document.js';
import type { SourceLocation } from '../../issue.js';

/** A YAML alias may expand to at most this many nodes; protects against "billion laughs" files. */
export const MAX_ALIAS_COUNT = 100;

const MAX_MERGE_DEPTH = 16;

/** The documents of `text`, read as Kubernetes reads YAML (go-yaml.ts). */
export function parseYamlDocuments(text: string): { docs: Document.Parsed[]; lineCounter: LineCounter } {
  return parseGoYamlDocuments(text);
}

/**
 * The documents of `text` as they are parsed, one at a time (what `parseAllDocuments` returns, as
 * a lazy sequence), so a file of thousands of documents can be parsed in slices. `lineCounter`
 * knows the lines up to the document last produced.
 */
export function streamYamlDocuments(text: string): { docs: Iterable<Document.Parsed>; lineCounter: LineCounter } {
  return streamGoYamlDocuments(text);
}

/**
 * Offset of the field at `path` (a mapping entry's key, a list element's start), or of the nearest
 * ancestor that exists when the field itself is missing.
 */
export function findOffset(doc: Document.Parsed, path: FieldPath): number | undefined {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (const segment of path) {
    const step = stepInto(doc, resolveAlias(doc, node), segment);
    if (!step) break;
    offset = step.offset ?? offset;
    node = step.node;
  }
  return offset;
}

function stepInto(doc: Document.Parsed, node: unknown, segment: string | number): { node: unknown; offset: number | undefined } | undefined {
  if (isSeq(node)) {
    if (typeof segment !== 'number') return undefined;
    const item: unknown = node.items[segment];
    return item === undefined ? undefined : { node: item, offset: rangeStart(item) };
  }
  if (isMap(node)) {
    const pair = findPair(doc, node, String(segment), 0);
    return pair ? { node: pair.value, offset: rangeStart(pair.key) ?? rangeStart(pair.value) } : undefined;
  }
  return undefined;
}

function findPair(doc: Document.Parsed, map: YAMLMap, key: string, depth: number): Pair | undefined {
  for (const pair of map.items) {
    if (isScalar(pair.key) && typeof pair.key.value !== 'symbol' && String(pair.key.value) === key) return pair;
  }
  if (depth >= MAX_MERGE_DEPTH) return undefined;
  // The field may come from a `<<: *base` merge; point at where the merged value is written.
  for (const pair of map.items) {
    if (!isMergeKey(pair.key)) continue;
    const sources: unknown[] = isSeq(pair.value) ? pair.value.items : [pair.value];
    for (const source of sources) {
      const merged = resolveAlias(doc, source);
      const found = isMap(merged) ? findPair(doc, merged, key, depth + 1) : undefined;
      if (found) return found;
    }
  }
  return undefined;
}

function isMergeKey(key: unknown): boolean {
  if (!isScalar(key)) return false;
  const value = key.value;
  return value === '<<' || (typeof value === 'symbol' && value.description === '<<');
}

function resolveAlias(doc: Document.Parsed, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function rangeStart(node: unknown): number | undefined {
  if (typeof node !== 'object' || node === null || !('range' in node)) return undefined;
  const range: unknown = node.range;
  return Array.isArray(range) && typeof range[0] === 'number' ? range[0] : undefined;
}

export function toLocation(file: string, lineCounter: LineCounter, offset: number | undefined): SourceLocation {
  if (offset === undefined) return { file };
  const { line, col } = lineCounter.linePos(offset);
  return { file, line, column: col };
}

/**
 * Field positions of one file, computed from its text only when first asked: locating is needed for
 * errors, which are rare, while the syntax trees of every document would cost memory all the time.
 */
export class LazyPositions {
  private parsed: { docs: Document.Parsed[]; lineCounter: LineCounter } | undefined;

  constructor(
    private readonly file: string,
    private readonly text: string,
  ) {}

  locate(docIndex: number, path: FieldPath): SourceLocation {
    this.parsed ??= parseYamlDocuments(this.text);
    const doc = this.parsed.docs[docIndex];
    return toLocation(this.file, this.parsed.lineCounter, doc ? findOffset(doc, path) : undefined);
  }
}
