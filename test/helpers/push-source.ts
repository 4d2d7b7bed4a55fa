import type { ConfigSource, RawDocument, SourceUpdate } from '../../src/index.js';
import { docs } from './mesh-from-yaml.js';

/** Documents from YAML text, located as `<id>[i]`. */
export function yamlDocs(text: string, id = 'push'): RawDocument[] {
  return docs(text).map((value, i) => ({ value, location: { file: `${id}[${i}]` } }));
}

/** A source a test pushes new content through, as a watched file or the Kubernetes API would. */
export class PushSource implements ConfigSource {
  private onUpdate: ((update: SourceUpdate) => void) | undefined;
  constructor(
    private documents: RawDocument[],
    readonly id = 'push',
  ) {}

  async start(onUpdate: (update: SourceUpdate) => void): Promise<void> {
    this.onUpdate = onUpdate;
    onUpdate({ source: this.id, documents: this.documents, issues: [] });
  }

  push(documents: RawDocument[]): void {
    this.documents = documents;
    this.onUpdate?.({ source: this.id, documents, issues: [] });
  }

  async close(): Promise<void> {}
}
