const MAX_SHOWN = 60;

/** A found value for a message: `"text"` (truncated), `42`, `true`, `null`, `a list`, `an object`. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return quoteText(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return `a timestamp ${value.toISOString()}`;
  if (typeof value === 'object') return 'an object';
  return String(value);
}

/** A found value with its kind, for type errors: `a string "80"`, `a number 1.5`, `a list`. */
export function describeTyped(value: unknown): string {
  if (typeof value === 'string') return `a string ${quoteText(value)}`;
  if (typeof value === 'number') return `a number ${value}`;
  if (typeof value === 'boolean') return `a boolean ${value}`;
  return describeValue(value);
}

/** JSON-quoted, cut to a readable length. */
export function quoteText(text: string): string {
  return JSON.stringify(text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}...` : text);
}

/** `'a', 'b' and 'c'`. */
export function listNames(names: readonly string[], conjunction = 'and'): string {
  const quoted = names.map((n) => `'${n}'`);
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} ${conjunction} ${quoted[quoted.length - 1]}`;
}
