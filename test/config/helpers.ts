import { LineCounter, isMap, isScalar, parseAllDocuments } from 'yaml';
import type { FieldPath, RawDocument } from '../../src/config/document.js';
import type { ConfigIssue } from '../../src/issue.js';
import { validateDocument } from '../../src/config/validate/index.js';
import type { ValidationResult } from '../../src/config/validate/index.js';

/** Parses YAML text into RawDocuments that can locate their fields (as a file source would). */
export function yamlDocuments(text: string, file = 'test.yaml'): RawDocument[] {
  const lineCounter = new LineCounter();
  return parseAllDocuments(text, { lineCounter }).map((doc) => {
    const start = lineCounter.linePos(doc.contents?.range?.[0] ?? 0);
    return {
      value: doc.toJS() as unknown,
      location: { file, line: start.line, column: start.col },
      locate(path: FieldPath) {
        // A map entry is located at its key, so an unknown field points at the field's name.
        const parent: unknown = path.length > 0 ? doc.getIn(path.slice(0, -1), true) : undefined;
        const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path[path.length - 1])) : undefined;
        const node: unknown = pair && isScalar(pair.key) ? pair.key : doc.getIn(path, true);
        const range = (node as { range?: [number, number, number] } | undefined)?.range;
        if (!range) return undefined;
        const pos = lineCounter.linePos(range[0]);
        return { file, line: pos.line, column: pos.col };
      },
    };
  });
}

/** Validates the single document in `text` in namespace `default`. */
export function validateYaml(text: string): ValidationResult {
  const docs = yamlDocuments(text);
  if (docs.length !== 1) throw new Error(`expected one document, got ${docs.length}`);
  return validateDocument(docs[0] as RawDocument, { defaultNamespace: 'default' });
}

export function errors(result: ValidationResult): ConfigIssue[] {
  return result.issues.filter((i) => i.severity === 'error');
}

export function warnings(result: ValidationResult): ConfigIssue[] {
  return result.issues.filter((i) => i.severity === 'warning');
}

/** The issues as `severity code path: message` lines, for readable assertions. */
export function summarize(issues: readonly ConfigIssue[]): string[] {
  return issues.map((i) => `${i.severity} ${i.code} ${i.path ?? ''}: ${i.message}`);
}
