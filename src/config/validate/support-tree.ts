import type { SchemaKind } from '../resource.js';
import type { FieldSupport } from '../support.js';
import { FIELD_SUPPORT, supportSegments } from '../support.js';

/**
 * The support table of one kind as a tree the schema walk descends with the document, so finding
 * a field's support costs one map lookup per field.
 */
export class SupportNode {
  readonly support: FieldSupport;
  /** Entering this field is reported: it is not supported and its parent's status differs. */
  readonly warn: boolean;
  readonly children = new Map<string, SupportNode>();
  #inherited: SupportNode | undefined;

  constructor(support: FieldSupport, warn: boolean) {
    this.support = support;
    this.warn = warn;
  }

  /** The node of property `name`: its own entry, or this node's status inherited. */
  child(name: string): SupportNode {
    const own = this.children.get(name);
    if (own) return own;
    this.#inherited ??= new SupportNode(this.support.values ? { status: this.support.status } : this.support, false);
    return this.#inherited;
  }
}

const ROOT_SUPPORT: FieldSupport = { status: 'supported' };
const trees = new Map<SchemaKind, SupportNode>();

/** The support tree of `kind`, rooted at the document (its first level holds `spec`). */
export function supportTree(kind: SchemaKind): SupportNode {
  let root = trees.get(kind);
  if (!root) {
    root = buildTree(FIELD_SUPPORT[kind]);
    trees.set(kind, root);
  }
  return root;
}

function buildTree(table: Readonly<Record<string, FieldSupport>>): SupportNode {
  const root = new SupportNode(ROOT_SUPPORT, false);
  // Shorter paths first, so each entry is placed under its listed ancestors.
  const entries = Object.entries(table)
    .map(([pattern, support]) => ({ segments: supportSegments(pattern), support }))
    .sort((a, b) => a.segments.length - b.segments.length);
  for (const { segments, support } of entries) {
    let node = root;
    for (const segment of segments.slice(0, -1)) {
      let next = node.children.get(segment);
      if (!next) {
        next = new SupportNode(node.support.values ? { status: node.support.status } : node.support, false);
        node.children.set(segment, next);
      }
      node = next;
    }
    const parentStatus = node.support.status;
    const warn = support.status !== 'supported' && support.status !== parentStatus;
    node.children.set(segments[segments.length - 1] as string, new SupportNode(support, warn));
  }
  return root;
}
