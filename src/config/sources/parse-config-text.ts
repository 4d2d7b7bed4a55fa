import { createHash } from 'node:crypto';
import { extname } from 'node:path';
import { isScalar, visit } from 'yaml';
import type { Document, LineCounter, YAMLError } from 'yaml';
import type { FieldPath, RawDocument } from '../document.js';
import type { ConfigIssue, SourceLocation } from '../../issue.js';
import { findJsonSyntaxError } from './json-syntax.js';
import { goYamlProblems } from './go-yaml.js';
import { expandKubernetesList, isJsonObject, notAnObjectMessage } from './kubernetes-object.js';
import type { Steps } from '../slices.js';
import { runToEnd } from '../slices.js';
import { LazyPositions, MAX_ALIAS_COUNT, findOffset, parseYamlDocuments, streamYamlDocuments, toLocation } from './yaml-positions.js';

export interface ParsedConfigText {
  readonly documents: RawDocument[];
  readonly issues: ConfigIssue[];
}

/** A file's content as compared between reads: unchanged content is not parsed again. */
export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

/** What one YAML/JSON document of a file needs to turn into RawDocuments. */
interface DocumentContext {
  readonly file: string;
  readonly docIndex: number;
  readonly doc: Document.Parsed;
  readonly lineCounter: LineCounter;
  readonly positions: LazyPositions;
}

/**
 * Parses the text of one configuration file: YAML (several documents separated by `---`), read as
 * Kubernetes reads it (go-yaml.ts), or, for a `.json` file, JSON. Lists (`kind: List`, `VirtualServiceList`) become one document per item. A file
 * with any parse error yields no documents at all: it is one unit the user edits, and half of it is
 * not a meaningful configuration.
 */
export function parseConfigText(text: string, file: string): ParsedConfigText {
  return runToEnd(parseConfigTextSteps(text, file));
}

/** {@link parseConfigText} in steps, one per YAML document, so that a large file can be parsed in slices. */
export function* parseConfigTextSteps(text: string, file: string): Steps<ParsedConfigText> {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (extname(file).toLowerCase() === '.json') return parseJson(source, file);
  return yield* parseYaml(source, file);
}

function* parseYaml(source: string, file: string): Steps<ParsedConfigText> {
  const { docs, lineCounter } = streamYamlDocuments(source);
  const syntaxIssues: ConfigIssue[] = [];
  const readIssues: ConfigIssue[] = [];
  const positions = new LazyPositions(file, source);
  const documents: RawDocument[] = [];
  const issues: ConfigIssue[] = [];
  let docIndex = -1;
  for (const doc of docs) {
    docIndex += 1;
    yield;
    const first = doc.errors[0];
    if (first) syntaxIssues.push(yamlErrorIssue(first, doc, file, lineCounter, source));
    // After a syntax error the file yields nothing: only the other syntax errors are still of use.
    if (syntaxIssues.length > 0) continue;
    // What Kubernetes could not read, or would read otherwise: the file is refused whole.
    for (const p of goYamlProblems(doc)) readIssues.push(parseError(p.message, toLocation(file, lineCounter, p.offset)));
    if (readIssues.length > 0) continue;
    for (const warning of doc.warnings) {
      issues.push({ severity: 'warning', code: 'parse', message: `YAML: ${warning.message}`, location: toLocation(file, lineCounter, warning.pos[0]) });
    }
    if (isEmptyDocument(doc)) continue;
    const context: DocumentContext = { file, docIndex, doc, lineCounter, positions };
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (error) {
      issues.push(parseError(toJsMessage(error), locationOf(context, [])));
      continue;
    }
    addDocuments(value, context, documents, issues);
  }
  if (syntaxIssues.length > 0) return { documents: [], issues: syntaxIssues };
  if (readIssues.length > 0) return { documents: [], issues: readIssues };
  return finish(documents, issues);
}

function parseJson(source: string, file: string): ParsedConfigText {
  if (source.trim() === '') return { documents: [], issues: [] };
  let value: unknown;
  try {
    value = JSON.parse(source);
  } catch (error) {
    return { documents: [], issues: [jsonErrorIssue(source, file, error)] };
  }
  // JSON.parse keeps the last of duplicate keys silently; the YAML parser finds them and gives the
  // positions that locate() reports.
  const { docs, lineCounter } = parseYamlDocuments(source);
  const doc = docs[0];
  if (!doc) return { documents: [], issues: [] };
  const duplicate = doc.errors.find((error) => error.code === 'DUPLICATE_KEY');
  if (duplicate) return { documents: [], issues: [yamlErrorIssue(duplicate, doc, file, lineCounter, source, 'JSON')] };
  if (value === null) return { documents: [], issues: [] };

  const documents: RawDocument[] = [];
  const issues: ConfigIssue[] = [];
  const context: DocumentContext = { file, docIndex: 0, doc, lineCounter, positions: new LazyPositions(file, source) };
  addDocuments(value, context, documents, issues);
  return finish(documents, issues);
}

function finish(documents: RawDocument[], issues: ConfigIssue[]): ParsedConfigText {
  return issues.some((issue) => issue.severity === 'error') ? { documents: [], issues } : { documents, issues };
}

function addDocuments(value: unknown, context: DocumentContext, documents: RawDocument[], issues: ConfigIssue[]): void {
  if (!isJsonObject(value)) {
    issues.push(parseError(notAnObjectMessage(value), locationOf(context, [])));
    return;
  }
  const list = expandKubernetesList(value);
  if (list === undefined) {
    documents.push(textDocument(value, context, []));
    return;
  }
  if ('error' in list) {
    issues.push(parseError(list.error, locationOf(context, ['items'])));
    return;
  }
  list.items.forEach((item, index) => {
    const base = ['items', index];
    if (isJsonObject(item)) documents.push(textDocument(item, context, base));
    else issues.push(parseError(`list item ${index}: ${notAnObjectMessage(item)}`, locationOf(context, base)));
  });
}

function textDocument(value: unknown, context: DocumentContext, base: FieldPath): RawDocument {
  const { positions, docIndex } = context;
  return {
    value,
    location: locationOf(context, base),
    locate: (path: FieldPath) => positions.locate(docIndex, [...base, ...path]),
  };
}

function locationOf(context: DocumentContext, path: FieldPath): SourceLocation {
  return toLocation(context.file, context.lineCounter, findOffset(context.doc, path));
}

function isEmptyDocument(doc: Document.Parsed): boolean {
  const contents = doc.contents;
  return contents === null || (isScalar(contents) && contents.value === null);
}

function parseError(message: string, location: SourceLocation): ConfigIssue {
  return { severity: 'error', code: 'parse', message, location };
}

function toJsMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (message.includes('resource exhaustion')) {
    return `YAML aliases expand to too many nodes (an alias may expand at most ${MAX_ALIAS_COUNT} times); refusing a possible "billion laughs" document`;
  }
  return `YAML error: ${message}`;
}

function yamlErrorIssue(error: YAMLError, doc: Document.Parsed, file: string, lineCounter: LineCounter, source: string, language = 'YAML'): ConfigIssue {
  const offset = error.pos[0];
  const message =
    error.code === 'DUPLICATE_KEY'
      ? `duplicate key ${JSON.stringify(duplicateKeyAt(doc, offset, source))} (a key may appear only once in a mapping)`
      : error.code === 'TAG_RESOLVE_FAILED'
        ? `${language}: ${error.message}`
        : `${language} syntax error: ${error.message}`;
  return parseError(message, toLocation(file, lineCounter, offset));
}

function duplicateKeyAt(doc: Document.Parsed, offset: number, source: string): string {
  let key: string | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        key = String(pair.key.value);
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return key ?? (/^[^:\n]*/.exec(source.slice(offset))?.[0] ?? '').trim();
}

function jsonErrorIssue(source: string, file: string, error: unknown): ConfigIssue {
  const found = findJsonSyntaxError(source);
  if (found) return parseError(`JSON syntax error: ${found.message}`, offsetLocation(file, source, found.offset));
  const message = error instanceof Error ? error.message : String(error);
  const position = /\(line (\d+) column (\d+)\)/.exec(message);
  const location: SourceLocation = position ? { file, line: Number(position[1]), column: Number(position[2]) } : { file };
  return parseError(`JSON syntax error: ${message}`, location);
}

function offsetLocation(file: string, text: string, offset: number): SourceLocation {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < offset; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { file, line, column: offset - lineStart + 1 };
}
