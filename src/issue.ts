/** Where a resource or a field was read from. */
export interface SourceLocation {
  /** File path as the user gave it (or a source id such as `inline[0]`). */
  readonly file?: string;
  /** 1-based line, when the source has lines. */
  readonly line?: number;
  readonly column?: number;
}

/** Identifies one Istio resource. */
export interface ResourceRef {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export type IssueSeverity = 'error' | 'warning';

/**
 * One finding about configuration. Errors reject the change; warnings are reported and the change
 * is accepted. `code` is stable and meant for programs; `message` for people.
 */
export interface ConfigIssue {
  readonly severity: IssueSeverity;
  /**
   * Stable identifier of the class of finding, e.g. `parse`, `unknown-field`, `type`, `enum`,
   * `required`, `duration`, `regex`, `rule`, `not-implemented`, `not-applicable`, `missing-subset`,
   * `duplicate-subset`, `conflicting-destination-rule`, `invalid-value`.
   */
  readonly code: string;
  /** What is wrong, with what was expected and what was found. */
  readonly message: string;
  readonly resource?: ResourceRef;
  /** Field path in the resource, e.g. `spec.http[0].match[1].uri.regex`. */
  readonly path?: string;
  readonly location?: SourceLocation;
}

export function formatLocation(location: SourceLocation | undefined): string {
  if (!location?.file) return '';
  return location.line ? `${location.file}:${location.line}` : location.file;
}

export function formatResourceRef(ref: ResourceRef | undefined): string {
  return ref ? `${ref.kind} ${ref.namespace}/${ref.name}` : '';
}

/** One line: `file:line: Kind ns/name: path: message`. */
export function formatIssue(issue: ConfigIssue): string {
  const parts = [formatLocation(issue.location), formatResourceRef(issue.resource), issue.path ?? ''].filter((p) => p !== '');
  const head = parts.length > 0 ? `${parts.join(': ')}: ` : '';
  return `${issue.severity}: ${head}${issue.message}`;
}
