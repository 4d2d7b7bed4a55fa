import type { RawDocument } from '../document.js';
import type { ConfigIssue } from '../../issue.js';
import { expandKubernetesList, isJsonObject, notAnObjectMessage } from './kubernetes-object.js';
import type { ConfigSource, SourceUpdate } from './source.js';

export interface InlineSourceOptions {
  /** Source id, also the name locations use: `<id>[0]`, `<id>[1].items[2]`. Default `inline`. */
  readonly id?: string;
}

/**
 * Configuration given as objects in code: each one a resource or a `kind: List`. The objects are
 * copied as JSON when the source is built, so later changes to them by the caller have no effect,
 * Dates become strings as they would on the wire, and values JSON cannot hold are reported.
 */
export class InlineSource implements ConfigSource {
  readonly id: string;
  private readonly update: SourceUpdate;

  constructor(objects: readonly unknown[], options: InlineSourceOptions = {}) {
    this.id = options.id ?? 'inline';
    this.update = buildUpdate(this.id, objects);
  }

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    onUpdate(this.update);
  }

  async close(): Promise<void> {
    // Nothing is watched.
  }
}

function buildUpdate(id: string, objects: readonly unknown[]): SourceUpdate {
  const documents: RawDocument[] = [];
  const issues: ConfigIssue[] = [];
  objects.forEach((object, index) => {
    const name = `${id}[${index}]`;
    const copy = copyAsJson(object);
    if ('error' in copy) {
      issues.push(inlineError(name, `cannot be represented as JSON: ${copy.error}`));
      return;
    }
    if (!isJsonObject(copy.value)) {
      issues.push(inlineError(name, notAnObjectMessage(copy.value)));
      return;
    }
    const list = expandKubernetesList(copy.value);
    if (list === undefined) documents.push({ value: copy.value, location: { file: name } });
    else if ('error' in list) issues.push(inlineError(name, list.error));
    else {
      list.items.forEach((item, itemIndex) => {
        const itemName = `${name}.items[${itemIndex}]`;
        if (isJsonObject(item)) documents.push({ value: item, location: { file: itemName } });
        else issues.push(inlineError(itemName, notAnObjectMessage(item)));
      });
    }
  });
  return { source: id, documents, issues };
}

function copyAsJson(object: unknown): { value: unknown } | { error: string } {
  try {
    const text = JSON.stringify(object);
    return { value: text === undefined ? undefined : (JSON.parse(text) as unknown) };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

function inlineError(file: string, message: string): ConfigIssue {
  return { severity: 'error', code: 'parse', message, location: { file } };
}
